// Package observe holds the data plane's telemetry: Prometheus metrics and the
// JSON access log. Both are built so the per-request cost is a handful of atomic
// operations and one buffered append: label lookups happen when a configuration is
// compiled, never per request.
package observe

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the set of Prometheus series Portico exports. It owns its registry
// (instead of the global default one) so tests and several runtimes in one process
// never collide, and so the ops server can expose exactly this registry.
type Metrics struct {
	// Registry holds every series below plus the Go runtime and process collectors.
	Registry *prometheus.Registry

	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	activeConns      prometheus.Gauge
	configInfo       *prometheus.GaugeVec
	reloads          prometheus.Counter
	reloadErrors     prometheus.Counter
	retries          *prometheus.CounterVec
	mirrors          *prometheus.CounterVec

	version atomic.Pointer[string] // the version configInfo currently reports
}

// NewMetrics creates the series and registers them on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_http_requests_total",
		Help: "HTTP requests handled, by gateway listener, route and status class.",
	}, []string{"gateway", "route", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "portico_http_request_duration_seconds",
		Help:    "Time from the request's arrival to the end of its response.",
		Buckets: prometheus.DefBuckets,
	}, []string{"gateway", "route"})
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "portico_http_upstream_duration_seconds",
		Help:    "Time from sending a request upstream to receiving its response head.",
		Buckets: prometheus.DefBuckets,
	}, []string{"gateway", "route"})
	m.activeConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "portico_downstream_connections_active",
		Help: "Client connections currently open on proxy listeners.",
	})
	m.configInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portico_config_info",
		Help: "The configuration version in force (value 1).",
	}, []string{"version"})
	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "portico_config_reloads_total",
		Help: "Configuration snapshots applied successfully.",
	})
	m.reloadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "portico_config_reload_errors_total",
		Help: "Configuration snapshots rejected (invalid, failed to compile, or failed to bind).",
	})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_retries_total",
		Help: "Retries by upstream: sent, or denied because the upstream's retry budget was exhausted.",
	}, []string{"upstream", "outcome"})
	m.mirrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_mirror_requests_total",
		Help: "Mirrored requests by mirror upstream and outcome (sent, failed, body_too_large, dropped_in_flight).",
	}, []string{"upstream", "outcome"})
	m.Registry.MustRegister(m.requests, m.duration, m.upstreamDuration, m.activeConns,
		m.configInfo, m.reloads, m.reloadErrors, m.retries, m.mirrors,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ReloadSucceeded counts an applied snapshot and reports its version.
func (m *Metrics) ReloadSucceeded(version string) {
	if m == nil {
		return
	}
	m.reloads.Inc()
	if old := m.version.Swap(&version); old != nil && *old != version {
		m.configInfo.DeleteLabelValues(*old)
	}
	m.configInfo.WithLabelValues(version).Set(1)
}

// ReloadFailed counts a rejected snapshot. Exported so every stage that can reject
// a configuration (file provider, translator, data plane) counts into one series.
func (m *Metrics) ReloadFailed() {
	if m == nil {
		return
	}
	m.reloadErrors.Inc()
}

// ConnOpened and ConnClosed track active downstream connections.
func (m *Metrics) ConnOpened() {
	if m != nil {
		m.activeConns.Inc()
	}
}

// ConnClosed is the counterpart of ConnOpened.
func (m *Metrics) ConnClosed() {
	if m != nil {
		m.activeConns.Dec()
	}
}

// Route returns the per-route series handle. Call it when a configuration is
// compiled and keep the result next to the route: RouteMetrics.Observe then costs
// no label lookup. A nil Metrics gives a nil handle, which observes nothing.
func (m *Metrics) Route(gateway, route string) *RouteMetrics {
	if m == nil {
		return nil
	}
	return &RouteMetrics{
		m:        m,
		gateway:  gateway,
		route:    route,
		duration: m.duration.WithLabelValues(gateway, route),
		upstream: m.upstreamDuration.WithLabelValues(gateway, route),
	}
}

// Forget drops the series of a route that no longer exists, so churn in route
// names does not grow memory forever.
func (m *Metrics) Forget(gateway, route string) {
	if m == nil {
		return
	}
	for _, c := range statusClasses {
		m.requests.DeleteLabelValues(gateway, route, c)
	}
	m.duration.DeleteLabelValues(gateway, route)
	m.upstreamDuration.DeleteLabelValues(gateway, route)
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// RouteMetrics records requests of one route. Status-class counters are resolved
// the first time a class is seen (so unused classes create no series) and then
// cached, so steady-state cost is an atomic load and an atomic add.
type RouteMetrics struct {
	m              *Metrics
	gateway, route string
	status         [len(statusClasses)]atomic.Pointer[prometheus.Counter]
	duration       prometheus.Observer
	upstream       prometheus.Observer
}

// Observe records one finished request. upstreamDur is zero when the request never
// reached an upstream; it is then not observed.
func (r *RouteMetrics) Observe(status int, dur, upstreamDur time.Duration) {
	if r == nil {
		return
	}
	class := status/100 - 1
	if class < 0 || class >= len(statusClasses) {
		class = 4
	}
	c := r.status[class].Load()
	if c == nil {
		cc := r.m.requests.WithLabelValues(r.gateway, r.route, statusClasses[class])
		c = &cc
		r.status[class].Store(c)
	}
	(*c).Inc()
	r.duration.Observe(dur.Seconds())
	if upstreamDur > 0 {
		r.upstream.Observe(upstreamDur.Seconds())
	}
}

// TrafficCounters are the per-upstream retry and mirror counters, resolved once
// when a configuration is compiled. A nil *TrafficCounters counts nothing.
type TrafficCounters struct {
	retrySent, retryDenied                            prometheus.Counter
	mirrorSent, mirrorFailed, mirrorLarge, mirrorBusy prometheus.Counter
}

// Traffic returns the retry and mirror counters of one upstream
// (portico_retries_total and portico_mirror_requests_total). A nil Metrics gives nil.
func (m *Metrics) Traffic(upstream string) *TrafficCounters {
	if m == nil {
		return nil
	}
	return &TrafficCounters{
		retrySent:    m.retries.WithLabelValues(upstream, "sent"),
		retryDenied:  m.retries.WithLabelValues(upstream, "budget_exhausted"),
		mirrorSent:   m.mirrors.WithLabelValues(upstream, "sent"),
		mirrorFailed: m.mirrors.WithLabelValues(upstream, "failed"),
		mirrorLarge:  m.mirrors.WithLabelValues(upstream, "body_too_large"),
		mirrorBusy:   m.mirrors.WithLabelValues(upstream, "dropped_in_flight"),
	}
}

// Retry counts a retry: sent, or denied by the upstream's retry budget.
func (t *TrafficCounters) Retry(sent bool) {
	switch {
	case t == nil:
	case sent:
		t.retrySent.Inc()
	default:
		t.retryDenied.Inc()
	}
}

// Mirror outcomes for TrafficCounters.Mirror.
const (
	MirrorSent = iota
	MirrorFailed
	MirrorBodyTooLarge
	MirrorDroppedInFlight
)

// Mirror counts a mirrored request by outcome (one of the Mirror* constants).
func (t *TrafficCounters) Mirror(outcome int) {
	if t == nil {
		return
	}
	switch outcome {
	case MirrorSent:
		t.mirrorSent.Inc()
	case MirrorFailed:
		t.mirrorFailed.Inc()
	case MirrorBodyTooLarge:
		t.mirrorLarge.Inc()
	case MirrorDroppedInFlight:
		t.mirrorBusy.Inc()
	}
}

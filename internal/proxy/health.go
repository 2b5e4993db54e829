package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"portico.dev/portico/internal/proxy/upstream"
)

// UpstreamHealth returns the health of every live upstream's endpoints: what
// /debug/upstreams shows.
func (rt *Runtime) UpstreamHealth() []upstream.UpstreamHealth { return rt.registry.Health() }

// healthCollector exports endpoint health at scrape time, so the series always match
// the upstreams in force and no per-change bookkeeping is needed.
type healthCollector struct {
	rt        *Runtime
	healthy   *prometheus.Desc
	available *prometheus.Desc
	ejections *prometheus.Desc
}

func newHealthCollector(rt *Runtime) *healthCollector {
	labels := []string{"upstream", "endpoint"}
	return &healthCollector{
		rt: rt,
		healthy: prometheus.NewDesc("portico_upstream_endpoint_healthy",
			"1 when the endpoint passes its active health checks (or has none).", labels, nil),
		available: prometheus.NewDesc("portico_upstream_endpoint_available",
			"1 when the endpoint may receive traffic: healthy and not ejected by outlier detection.", labels, nil),
		ejections: prometheus.NewDesc("portico_upstream_endpoint_ejections",
			"Times outlier detection ejected the endpoint since its upstream was built.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.healthy
	ch <- c.available
	ch <- c.ejections
}

// Collect implements prometheus.Collector.
func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.rt.registry.Health() {
		for _, e := range u.Endpoints {
			ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, boolValue(e.Healthy), u.Name, e.Address)
			ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, boolValue(e.Available), u.Name, e.Address)
			ch <- prometheus.MustNewConstMetric(c.ejections, prometheus.GaugeValue, float64(e.Ejections), u.Name, e.Address)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

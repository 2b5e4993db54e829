package translate

import (
	"net/textproto"
	"slices"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
)

// Defaults translation fills in for traffic policy (docs/configuration.md lists them).
// Durations are milliseconds, as in the IR.
const (
	// Retry budget (the defaults of Gateway API GEP-3388): always present.
	DefaultRetryBudgetPercent        = 20
	DefaultRetryBudgetMinPerSecond   = 3
	DefaultRetryBudgetIntervalMillis = 10_000

	// Active health checks.
	DefaultCheckIntervalMillis     = 5_000
	DefaultCheckTimeoutMillis      = 1_000
	DefaultCheckHealthyThreshold   = 2
	DefaultCheckUnhealthyThreshold = 3

	// Passive health checks (outlier detection).
	DefaultConsecutiveGatewayErrors = 5
	DefaultBaseEjectionMillis       = 30_000
	DefaultMaxEjectionMillis        = 300_000
	DefaultMaxEjectedPercent        = 50

	// Retries.
	DefaultBackoffBaseMillis = 25
	DefaultBackoffMaxMillis  = 250

	DefaultMirrorPercent        = 100
	DefaultLocalityMinHealthy   = 70
	DefaultDNSRefreshMillis     = 30_000
	DefaultUDPIdleTimeoutMillis = 60_000
)

// DefaultRetryOn is the retry condition list when a retry policy names none: failures
// where the request most likely never reached the application, or the gateway said so.
var DefaultRetryOn = []string{v1alpha1.RetryOnConnectFailure, v1alpha1.RetryOnGatewayError}

// millis converts a validated duration; empty gives def. A positive duration below
// a millisecond becomes 1 so that it never turns into "not set".
func millis(v string, def int64) int64 {
	if v == "" {
		return def
	}
	d, _ := time.ParseDuration(v)
	ms := d.Milliseconds()
	if d > 0 && ms == 0 {
		ms = 1
	}
	return ms
}

// orInt32 returns v unless it is zero.
func orInt32(v, def int32) int32 {
	if v == 0 {
		return def
	}
	return v
}

func ptrOr(v *int32, def int32) int32 {
	if v == nil {
		return def
	}
	return *v
}

// upstreamTraffic translates everything about reaching an upstream beyond its
// endpoint list.
func upstreamTraffic(s *v1alpha1.UpstreamSpec) ir.UpstreamTraffic {
	var t ir.UpstreamTraffic
	if d := s.DNS; d != nil {
		t.DNS = &ir.DNSDiscovery{Name: d.Name, Port: d.Port, SRV: d.SRV, RefreshMillis: millis(d.Refresh, DefaultDNSRefreshMillis)}
	}
	if lb := s.LoadBalancer; lb != nil {
		if h := lb.HashOn; h != nil {
			t.Hash = &ir.HashPolicy{Cookie: h.Cookie, SourceIP: h.SourceIP, Path: h.Path}
			if h.Header != "" {
				t.Hash.Header = textproto.CanonicalMIMEHeaderKey(h.Header)
			}
		}
		t.SlowStartMillis = millis(lb.SlowStart, 0)
		if a := lb.SessionAffinity; a != nil {
			t.Affinity = &ir.Affinity{Cookie: a.Cookie, TTLMillis: millis(a.TTL, 0)}
		}
		if l := lb.Locality; l != nil {
			t.Locality = &ir.Locality{Zone: l.Zone, MinHealthyPercent: ptrOr(l.MinHealthyPercent, DefaultLocalityMinHealthy)}
		}
	}
	if hc := s.HealthCheck; hc != nil && (hc.Active != nil || hc.Passive != nil) {
		t.HealthCheck = &ir.HealthCheck{Active: activeCheck(hc.Active), Passive: passiveCheck(hc.Passive)}
	}
	if cb := s.CircuitBreaker; cb != nil {
		t.CircuitBreaker = &ir.CircuitBreaker{MaxConnections: cb.MaxConnections, MaxPendingRequests: cb.MaxPendingRequests,
			MaxRequests: cb.MaxRequests, MaxRetries: cb.MaxRetries}
	}
	if to := s.Timeouts; to != nil {
		t.Timeouts = ir.UpstreamTimeouts{ConnectMillis: millis(to.Connect, 0), IdleMillis: millis(to.Idle, 0),
			ResponseHeaderMillis: millis(to.ResponseHeader, 0)}
	}
	t.RetryBudget = ir.RetryBudget{Percent: DefaultRetryBudgetPercent, MinRetriesPerSecond: DefaultRetryBudgetMinPerSecond,
		IntervalMillis: DefaultRetryBudgetIntervalMillis}
	if b := s.RetryBudget; b != nil {
		t.RetryBudget.Percent = ptrOr(b.Percent, DefaultRetryBudgetPercent)
		t.RetryBudget.MinRetriesPerSecond = ptrOr(b.MinRetriesPerSecond, DefaultRetryBudgetMinPerSecond)
		t.RetryBudget.IntervalMillis = millis(b.Interval, DefaultRetryBudgetIntervalMillis)
	}
	t.ProxyProtocol = s.ProxyProtocol
	return t
}

// activeCheck fills in interval 5s, timeout 1s and thresholds 2 (healthy) and 3
// (unhealthy). Empty expected statuses stay empty: the data plane reads them as 200–399.
func activeCheck(a *v1alpha1.ActiveHealthCheck) *ir.ActiveCheck {
	if a == nil {
		return nil
	}
	out := &ir.ActiveCheck{
		IntervalMillis:     millis(a.Interval, DefaultCheckIntervalMillis),
		TimeoutMillis:      millis(a.Timeout, DefaultCheckTimeoutMillis),
		HealthyThreshold:   orInt32(a.HealthyThreshold, DefaultCheckHealthyThreshold),
		UnhealthyThreshold: orInt32(a.UnhealthyThreshold, DefaultCheckUnhealthyThreshold),
		JitterMillis:       millis(a.Jitter, 0),
	}
	switch {
	case a.HTTP != nil:
		out.Type, out.Path, out.Host = ir.CheckHTTP, a.HTTP.Path, a.HTTP.Host
		out.ExpectedStatuses = slices.Clone(a.HTTP.ExpectedStatuses)
	case a.TCP != nil:
		out.Type = ir.CheckTCP
	case a.GRPC != nil:
		out.Type, out.GRPCService = ir.CheckGRPC, a.GRPC.Service
	}
	return out
}

// passiveCheck maps consecutiveFailures to gateway errors (502/503/504 and connect
// failures); with no counter set, gateway errors count with the default threshold.
// The maximum ejection is never below the base ejection.
func passiveCheck(p *v1alpha1.PassiveHealthCheck) *ir.PassiveCheck {
	if p == nil {
		return nil
	}
	out := &ir.PassiveCheck{
		Consecutive5xx:           p.Consecutive5xx,
		ConsecutiveGatewayErrors: p.ConsecutiveFailures,
		ConsecutiveTimeouts:      p.ConsecutiveTimeouts,
		BaseEjectionMillis:       millis(p.EjectionTime, DefaultBaseEjectionMillis),
		MaxEjectionMillis:        millis(p.MaxEjectionTime, DefaultMaxEjectionMillis),
		MaxEjectedPercent:        ptrOr(p.MaxEjectedPercent, DefaultMaxEjectedPercent),
	}
	if out.Consecutive5xx == 0 && out.ConsecutiveGatewayErrors == 0 && out.ConsecutiveTimeouts == 0 {
		out.ConsecutiveGatewayErrors = DefaultConsecutiveGatewayErrors
	}
	out.MaxEjectionMillis = max(out.MaxEjectionMillis, out.BaseEjectionMillis)
	return out
}

// retry fills in the backoff (25ms to 250ms, the maximum never below the base) and
// the conditions (DefaultRetryOn) when none are named.
func retry(r *v1alpha1.RouteRetry) *ir.Retry {
	if r == nil {
		return nil
	}
	out := &ir.Retry{
		Attempts:            r.Attempts,
		On:                  slices.Clone(r.On),
		StatusCodes:         slices.Clone(r.StatusCodes),
		PerTryTimeoutMillis: millis(r.PerTryTimeout, 0),
		BackoffBaseMillis:   DefaultBackoffBaseMillis,
		BackoffMaxMillis:    DefaultBackoffMaxMillis,
		NonIdempotent:       r.NonIdempotent,
	}
	if len(out.On) == 0 {
		out.On = slices.Clone(DefaultRetryOn)
	}
	if b := r.Backoff; b != nil {
		out.BackoffBaseMillis = millis(b.Base, DefaultBackoffBaseMillis)
		out.BackoffMaxMillis = millis(b.Max, DefaultBackoffMaxMillis)
	}
	out.BackoffMaxMillis = max(out.BackoffMaxMillis, out.BackoffBaseMillis)
	return out
}

// fault translates fault injection; percents are carried as given.
func fault(f *v1alpha1.Fault) *ir.Fault {
	if f == nil {
		return nil
	}
	out := &ir.Fault{}
	if d := f.Delay; d != nil {
		out.DelayMillis, out.DelayPercent = millis(d.Duration, 0), d.Percent
	}
	if a := f.Abort; a != nil {
		out.AbortStatus, out.AbortPercent = a.Status, a.Percent
	}
	return out
}

package v1alpha1

import (
	"net/netip"
	"strings"
)

// Retry conditions a route may name in retry.on.
const (
	RetryOnConnectFailure       = "connect-failure"
	RetryOnReset                = "reset"
	RetryOnGatewayError         = "gateway-error"
	RetryOn5xx                  = "5xx"
	RetryOnRetriableStatusCodes = "retriable-status-codes"
)

// MaxRetryAttempts caps retry.attempts: more only multiplies load on a failing backend.
const MaxRetryAttempts = 10

var retryConditions = map[string]bool{
	RetryOnConnectFailure: true, RetryOnReset: true, RetryOnGatewayError: true,
	RetryOn5xx: true, RetryOnRetriableStatusCodes: true,
}

// validateRouteTraffic checks a route's timeouts, retry, mirror and fault.
func validateRouteTraffic(errs *fieldErrors, s *RouteSpec) {
	if t := s.Timeouts; t != nil {
		checkDuration(errs, "spec.timeouts.request", t.Request, false)
		checkDuration(errs, "spec.timeouts.idle", t.Idle, true)
	}
	if s.Retry != nil {
		validateRetry(errs, "spec.retry", s.Retry)
	}
	if m := s.Mirror; m != nil {
		checkName(errs, "spec.mirror.upstream", m.Upstream)
		if m.Percent != nil {
			checkFloatPercent(errs, "spec.mirror.percent", *m.Percent)
		}
	}
	if f := s.Fault; f != nil {
		validateFault(errs, "spec.fault", f)
	}
}

// validateRetry checks a retry policy: attempts 0–10, known conditions, and status
// codes exactly when retriable-status-codes is named.
func validateRetry(errs *fieldErrors, p string, rt *RouteRetry) {
	if rt.Attempts < 0 || rt.Attempts > MaxRetryAttempts {
		errs.add(p+".attempts", "must be between 0 and %d, got %d", MaxRetryAttempts, rt.Attempts)
	}
	seen := map[string]int{}
	for i, on := range rt.On {
		switch {
		case !retryConditions[on]:
			errs.add(at(p+".on", i), "unknown condition %q: one of connect-failure, reset, gateway-error, 5xx, retriable-status-codes", on)
		case seenBefore(seen, on, i):
			errs.add(at(p+".on", i), "duplicate of %s", at(p+".on", seen[on]))
		}
	}
	_, wantCodes := seen[RetryOnRetriableStatusCodes]
	switch {
	case wantCodes && len(rt.StatusCodes) == 0:
		errs.add(p+".statusCodes", "required when on lists retriable-status-codes")
	case !wantCodes && len(rt.StatusCodes) > 0:
		errs.add(p+".statusCodes", "only used with the condition retriable-status-codes: add it to on")
	}
	for i, code := range rt.StatusCodes {
		if code < 100 || code > 599 {
			errs.add(at(p+".statusCodes", i), "must be between 100 and 599, got %d", code)
		}
	}
	checkDuration(errs, p+".perTryTimeout", rt.PerTryTimeout, true)
	if b := rt.Backoff; b != nil {
		checkDuration(errs, p+".backoff.base", b.Base, true)
		checkDuration(errs, p+".backoff.max", b.Max, true)
		base, okBase := parseDuration(b.Base)
		limit, okMax := parseDuration(b.Max)
		if okBase && okMax && limit < base {
			errs.add(p+".backoff.max", "must not be less than base (%s)", b.Base)
		}
	}
}

// seenBefore records v at i and reports whether it was already recorded.
func seenBefore(seen map[string]int, v string, i int) bool {
	if _, dup := seen[v]; dup {
		return true
	}
	seen[v] = i
	return false
}

// validateFault checks fault injection: at least one of delay and abort.
func validateFault(errs *fieldErrors, p string, f *Fault) {
	if f.Delay == nil && f.Abort == nil {
		errs.add(p, "set delay, abort or both")
	}
	if d := f.Delay; d != nil {
		if d.Duration == "" {
			errs.add(p+".delay.duration", "required")
		}
		checkDuration(errs, p+".delay.duration", d.Duration, true)
		checkFloatPercent(errs, p+".delay.percent", d.Percent)
	}
	if a := f.Abort; a != nil {
		if a.Status < 200 || a.Status > 599 {
			errs.add(p+".abort.status", "must be between 200 and 599, got %d", a.Status)
		}
		checkFloatPercent(errs, p+".abort.percent", a.Percent)
	}
}

func checkFloatPercent(errs *fieldErrors, field string, v float64) {
	if !(v >= 0 && v <= 100) { // also rejects NaN
		errs.add(field, "must be between 0 and 100, got %g", v)
	}
}

// validateProxyProtocolAccept checks a listener's trusted PROXY protocol sources.
func validateProxyProtocolAccept(errs *fieldErrors, p string, l *Listener) {
	if l.Protocol == ProtocolUDP {
		errs.add(p, "not supported on UDP listeners")
	}
	if len(l.ProxyProtocol.TrustedCIDRs) == 0 {
		errs.add(p+".trustedCIDRs", "at least one CIDR or IP address is required")
	}
	for i, c := range l.ProxyProtocol.TrustedCIDRs {
		if _, ok := ParseTrustedSource(c); !ok {
			errs.add(at(p+".trustedCIDRs", i), "must be a CIDR (10.0.0.0/8) or an IP address, got %q", c)
		}
	}
}

// ParseTrustedSource parses a CIDR or a single IP address (a /32 or /128 prefix) and
// returns it masked to its network; translation uses it to normalise trustedCIDRs.
func ParseTrustedSource(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

package proxy

import (
	"net/http"
	"time"

	"portico.dev/portico/internal/ir"
)

// faultPolicy is a compiled ir.Fault. A sampled share of requests is delayed
// (the delay ends early if the client leaves), then a sampled share is aborted
// with the configured status and a JSON error "fault_injected", before any
// upstream is contacted. Delay and abort are sampled independently, so a request
// may be delayed and then aborted, as in Envoy.
type faultPolicy struct {
	delay    time.Duration
	delayPct float64
	abortPct float64
	abort    *gatewayError
}

func compileFault(f *ir.Fault) *faultPolicy {
	if f == nil {
		return nil
	}
	p := &faultPolicy{delay: time.Duration(f.DelayMillis) * time.Millisecond, delayPct: f.DelayPercent}
	if f.AbortPercent > 0 {
		p.abortPct = f.AbortPercent
		status := int(f.AbortStatus)
		if status < 200 || status > 599 {
			status = http.StatusServiceUnavailable
		}
		p.abort = newGatewayError(status, "fault_injected", "the request was aborted by fault injection")
	}
	if (p.delay <= 0 || p.delayPct <= 0) && p.abort == nil {
		return nil
	}
	return p
}

// apply injects the faults; it reports whether the request is finished
// (aborted, or the client left during the delay).
func (f *faultPolicy) apply(x *exchange, w http.ResponseWriter, r *http.Request) bool {
	if f.delay > 0 && sampled(f.delayPct) {
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			x.status = statusClientClosed
			return true
		}
	}
	if f.abort != nil && sampled(f.abortPct) {
		x.fail(w, f.abort)
		return true
	}
	return false
}

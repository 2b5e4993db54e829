package upstream

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Peak-EWMA latency (the idea of Finagle's and Linkerd's balancers): a
// time-weighted moving average that jumps to any higher observation at once
// (the peak) and forgets it with time constant ewmaDecay. Between
// observations the value also decays towards zero when read, so an endpoint
// that was slow and stopped receiving traffic is eventually tried again.

const (
	// ewmaDecay is the time constant: an observation's weight halves in ~7 s.
	ewmaDecay = 10 * time.Second
	// ewmaFloor keeps a zero (unmeasured) latency from hiding in-flight load.
	ewmaFloor = float64(time.Microsecond)
	// failMin is the least latency a failed attempt counts for: failures are
	// often fast (connection refused) and must not look attractive.
	failMin = 20 * time.Millisecond
)

// latencyEWMA holds one endpoint's peak-EWMA state. Readers are lock-free;
// writers serialise on mu so each update sees the previous one.
type latencyEWMA struct {
	mu    sync.Mutex
	val   atomic.Uint64 // float64 bits, nanoseconds
	stamp atomic.Int64  // nanotime of the last update
}

// decayed returns the value as of now.
func (l *latencyEWMA) decayed(now int64) float64 {
	v := math.Float64frombits(l.val.Load())
	if v == 0 {
		return 0
	}
	if dt := now - l.stamp.Load(); dt > 0 {
		v *= math.Exp(-float64(dt) / float64(ewmaDecay))
	}
	return v
}

// observeLatency feeds one attempt's latency into the endpoint's peak-EWMA
// (used by the ewma algorithm). A failed attempt counts as at least four
// times the current estimate and at least failMin. Report calls it.
func (e *Endpoint) observeLatency(d time.Duration, failed bool) {
	e.lat.observe(nanotime(), float64(d), failed)
}

func (l *latencyEWMA) observe(now int64, d float64, failed bool) {
	l.mu.Lock()
	cur := math.Float64frombits(l.val.Load())
	w := 0.0
	if last := l.stamp.Load(); last != 0 && now > last {
		w = math.Exp(-float64(now-last) / float64(ewmaDecay))
	} else if last != 0 {
		w = 1 // same instant: keep the old value's full weight
	}
	if failed {
		d = max(d, 4*cur, float64(failMin))
	}
	if dec := cur * w; cur == 0 || d > dec {
		cur = d // peak: react to slowness at once
	} else {
		cur = dec + d*(1-w)
	}
	l.val.Store(math.Float64bits(cur))
	l.stamp.Store(now)
	l.mu.Unlock()
}

// copyFrom carries the estimate over to a rebuilt upstream's endpoint.
func (l *latencyEWMA) copyFrom(o *latencyEWMA) {
	l.val.Store(o.val.Load())
	l.stamp.Store(o.stamp.Load())
}

// ewmaCost is the ewma algorithm's load score: lower is better.
func ewmaCost(e *Endpoint, now int64) float64 {
	return (e.lat.decayed(now) + ewmaFloor) * float64(e.inflight.Load()+1) / float64(e.Weight)
}

// epoch anchors nanotime to the monotonic clock.
var epoch = time.Now()

// nanotime is a monotonic clock in ns, never 0 (0 means "unset" in fields).
func nanotime() int64 { return int64(time.Since(epoch)) + 1 }

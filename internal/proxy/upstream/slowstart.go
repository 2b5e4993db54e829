package upstream

import "sync/atomic"

// Slow start (ir.UpstreamTraffic.SlowStartMillis): an endpoint that joins an
// upstream that already served traffic (a changed definition, a DNS answer),
// or that becomes available again, gets an effective weight that grows
// linearly from rampMin to 100% of its weight over the window, so a cold
// process (empty caches, JIT, fresh connection pools) is not handed its full
// share at once. Endpoints of an upstream built for the first time do not
// ramp: they all start together, and ramping them all equally changes nothing.
//
// Recovery is noticed by the balancer itself: whenever a pick looks at an
// endpoint it records whether it was unavailable, and the first pick that
// sees it available again starts its ramp. This needs no hook into health
// checking. The ramp applies to round-robin and random (as weight) and to
// least-request and ewma (as the chance of being one of the two choices);
// consistent hashing ignores it, since moving keys would defeat the hash.

// rampMin is the share of its weight an endpoint starts its ramp with.
const rampMin = 0.1

// rampState is one endpoint's slow-start state.
type rampState struct {
	from atomic.Int64 // nanotime the ramp began; 0: not ramping
	down atomic.Bool  // last seen unavailable
}

// startRamp begins e's ramp at now.
func (b *balancer) startRamp(e *Endpoint, now int64) {
	e.ramp.from.Store(now)
	b.extendRamp(now)
}

// extendRamp records that a ramp begun at from may still run, which keeps
// round-robin off its lock-free path (which ignores weights) until it ends.
func (b *balancer) extendRamp(from int64) {
	if from == 0 {
		return
	}
	end := from + b.slowStart
	for {
		cur := b.rampUntil.Load()
		if end <= cur || b.rampUntil.CompareAndSwap(cur, end) {
			return
		}
	}
}

// rampFactor is the share (rampMin..1) of its weight e gets at now.
func (b *balancer) rampFactor(e *Endpoint, now int64) float64 {
	from := e.ramp.from.Load()
	if from == 0 {
		return 1
	}
	el := now - from
	if el >= b.slowStart {
		e.ramp.from.CompareAndSwap(from, 0) // done: skip the clock math next time
		return 1
	}
	if el < 0 {
		el = 0
	}
	return rampMin + (1-rampMin)*float64(el)/float64(b.slowStart)
}

// noteHealth tracks availability transitions seen by picks; a recovery
// starts a ramp. The common case (available, was available) is one load.
func (b *balancer) noteHealth(e *Endpoint, up bool, now int64) {
	if up {
		if e.ramp.down.Load() && e.ramp.down.CompareAndSwap(true, false) {
			b.startRamp(e, now)
		}
		return
	}
	if !e.ramp.down.Load() {
		e.ramp.down.Store(true)
	}
}

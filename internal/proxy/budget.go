package proxy

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy/upstream"
)

// Retry budget (Gateway API GEP-3388), one per live *upstream.Upstream.
//
// Every request that a route with a retry policy sends to the upstream is
// counted in a sliding window of IntervalMillis (requests of routes without a
// retry policy are not counted: they cost nothing, and leaving them out only
// makes the budget stricter). A retry is admitted when, counting it, the
// retries in the window stay below Percent% of the requests in the window, OR
// within the minimum rate, MinRetriesPerSecond × the interval in seconds (3/s
// over 10 s: 30 retries). The allowance is thus the larger of the two, never
// their sum, and retries are not counted as requests, so with every endpoint
// failing under load the requests reaching the upstream stay below
// (1 + Percent/100) × the client's requests in any interval. Retries after a
// refused connection spend no budget (see unreachable).
//
// The window is a ring of time buckets with epoch-tagged atomic counters:
// counting a request is one compare-and-swap, deciding a retry sums the ring
// (IntervalMillis/20 per bucket, so the window slides in 5% steps).

// Defaults when an upstream's budget is the zero value (translation always
// fills it; hand-written IR may not).
const (
	defaultBudgetPercent   = 20
	defaultBudgetMinPerSec = 3
	defaultBudgetInterval  = 10 * time.Second
	budgetBuckets          = 20
)

// clockBase anchors the monotonic nanosecond clock used by windows.
var clockBase = time.Now()

func nanotime() int64 { return int64(time.Since(clockBase)) }

// bucket holds a request and a retry count, each an atomic word tagging the
// count (low 32 bits) with the epoch it belongs to (high 32 bits): a stale
// bucket is recycled by the compare-and-swap that counts into it, so no count is
// ever lost to a reset.
type bucket struct {
	reqs, retries atomic.Uint64
}

// bump adds delta (+1 or -1) to the count of epoch e in v.
func bump(v *atomic.Uint64, e uint32, delta int) {
	for {
		old := v.Load()
		var n uint64
		switch c := uint32(old); {
		case uint32(old>>32) != e && delta < 0, uint32(old>>32) == e && delta < 0 && c == 0:
			return // nothing of this epoch to take back
		case uint32(old>>32) != e:
			n = uint64(e)<<32 | 1
		case delta < 0:
			n = old - 1
		default:
			n = old + 1
		}
		if v.CompareAndSwap(old, n) {
			return
		}
	}
}

// window is a ring of buckets covering len(b)×width nanoseconds.
type window struct {
	width int64
	b     []bucket
}

func newWindow(span time.Duration, n int) window {
	w := window{width: int64(span) / int64(n), b: make([]bucket, n)}
	if w.width <= 0 {
		w.width = 1
	}
	return w
}

// at returns the bucket and epoch for time now.
func (w *window) at(now int64) (*bucket, uint32) {
	e := now / w.width
	return &w.b[e%int64(len(w.b))], uint32(e)
}

// sums returns the requests and retries counted in the window ending at now.
func (w *window) sums(now int64) (reqs, retries int64) {
	e := uint32(now / w.width)
	n := uint32(len(w.b))
	for i := range w.b {
		b := &w.b[i]
		if v := b.reqs.Load(); e-uint32(v>>32) < n {
			reqs += int64(uint32(v))
		}
		if v := b.retries.Load(); e-uint32(v>>32) < n {
			retries += int64(uint32(v))
		}
	}
	return reqs, retries
}

// retryBudget is the state of one upstream's budget.
type retryBudget struct {
	percent int64
	minimum int64  // retries always allowed per interval
	win     window // requests and retries over the interval
}

func newRetryBudget(c ir.RetryBudget) *retryBudget {
	if c == (ir.RetryBudget{}) {
		c = ir.RetryBudget{Percent: defaultBudgetPercent, MinRetriesPerSecond: defaultBudgetMinPerSec}
	}
	iv := time.Duration(c.IntervalMillis) * time.Millisecond
	if iv <= 0 {
		iv = defaultBudgetInterval
	}
	b := &retryBudget{percent: int64(max(c.Percent, 0)), win: newWindow(iv, budgetBuckets)}
	if c.MinRetriesPerSecond > 0 {
		b.minimum = max(int64(c.MinRetriesPerSecond)*int64(iv)/int64(time.Second), 1)
	}
	return b
}

// request counts one request (not a retry) sent to the upstream.
func (b *retryBudget) request(now int64) {
	bk, e := b.win.at(now)
	bump(&bk.reqs, e, 1)
}

// allow reports whether one more retry fits the budget, and if so counts it.
// The retry is reserved before checking, so concurrent callers see each other
// and the bound holds under contention.
func (b *retryBudget) allow(now int64) bool {
	bk, e := b.win.at(now)
	bump(&bk.retries, e, 1)
	reqs, retries := b.win.sums(now)
	if retries*100 < reqs*b.percent || retries <= b.minimum {
		return true
	}
	bump(&bk.retries, e, -1)
	return false
}

// upstreamState is what the handler keeps per live upstream beyond the upstream
// package's own state: the retry budget and the mirror in-flight count. It lives
// exactly as long as the *upstream.Upstream, which the registry keeps across
// swaps while its definition is unchanged, so budgets survive reloads.
type upstreamState struct {
	budget         *retryBudget
	mirrorInFlight atomic.Int32
}

// upstreamStates maps weak upstream pointers to their state; an entry is deleted
// when its upstream is garbage collected.
var upstreamStates sync.Map // weak.Pointer[upstream.Upstream] → *upstreamState

// stateOf returns the state of u, creating it on first use (at compile time).
func stateOf(u *upstream.Upstream) *upstreamState {
	k := weak.Make(u)
	if v, ok := upstreamStates.Load(k); ok {
		return v.(*upstreamState)
	}
	s := &upstreamState{budget: newRetryBudget(u.Config().RetryBudget)}
	v, loaded := upstreamStates.LoadOrStore(k, s)
	if !loaded {
		runtime.AddCleanup(u, func(k weak.Pointer[upstream.Upstream]) { upstreamStates.Delete(k) }, k)
	}
	return v.(*upstreamState)
}

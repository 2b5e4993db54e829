package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/ir"
)

// Circuit-breaker limit names, reported in Error.Limit (and by the handler
// in the X-Portico-Overloaded header).
const (
	LimitConnections = "max-connections"
	LimitPending     = "max-pending-requests"
	LimitRequests    = "max-requests"
	LimitRetries     = "max-retries"
)

// breaker enforces an upstream's circuit-breaker limits (0 = no limit).
//
//   - max-requests and max-retries count attempts from RoundTripTry until
//     the response body is closed or read to its end (a 101 upgrade or an
//     error releases at once); checked before the pick.
//   - max-connections counts open HTTP/1.1 connections (idle ones included)
//     from dial to close. A request that needs a new connection at the limit
//     becomes pending: it takes an idle connection of its endpoint when one
//     is parked, closes an idle one of another endpoint to free a slot, or
//     waits for a slot up to Options.PendingTimeout (then: max-connections).
//   - max-pending-requests bounds those waiting requests (beyond it:
//     max-pending-requests at once).
//
// For h2/h2c upstreams connections are counted the same way, but the limit
// is given to net/http as MaxConnsPerHost = max(1, MaxConnections /
// endpoints); its queue for a connection is not bounded by max-pending.
type breaker struct {
	cfg      ir.CircuitBreaker
	requests atomic.Int32
	retries  atomic.Int32
	waiters  atomic.Int32

	mu      sync.Mutex
	conns   int32
	pending int32
	wake    chan struct{} // closed and replaced when a slot or idle conn frees
}

func newBreaker(cb *ir.CircuitBreaker) *breaker {
	if cb == nil || *cb == (ir.CircuitBreaker{}) {
		return nil
	}
	return &breaker{cfg: *cb, wake: make(chan struct{})}
}

// countsConns reports whether connections are counted (and wrapped).
func (b *breaker) countsConns() bool { return b != nil && b.cfg.MaxConnections > 0 }

func overloaded(limit, upstream string) *Error {
	return &Error{Kind: Overloaded, Limit: limit,
		Err: fmt.Errorf("upstream %q reached its %s limit", upstream, limit)}
}

// enter admits one attempt under max-requests and max-retries; every
// successful enter is matched by one leave.
func (b *breaker) enter(retry bool, upstream string) error {
	if max := b.cfg.MaxRequests; max > 0 && b.requests.Add(1) > max {
		b.requests.Add(-1)
		return overloaded(LimitRequests, upstream)
	}
	if max := b.cfg.MaxRetries; retry && max > 0 && b.retries.Add(1) > max {
		b.retries.Add(-1)
		if b.cfg.MaxRequests > 0 {
			b.requests.Add(-1)
		}
		return overloaded(LimitRetries, upstream)
	}
	return nil
}

func (b *breaker) leave(retry bool) {
	if b.cfg.MaxRequests > 0 {
		b.requests.Add(-1)
	}
	if retry && b.cfg.MaxRetries > 0 {
		b.retries.Add(-1)
	}
}

// tracksRequests reports whether enter/leave do anything.
func (b *breaker) tracksRequests() bool {
	return b != nil && (b.cfg.MaxRequests > 0 || b.cfg.MaxRetries > 0)
}

// release wraps resp so that leave runs when the exchange ends.
func (b *breaker) release(resp *http.Response, retry bool) {
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
		b.leave(retry) // tunnels are not requests in flight; the body type must stay intact
		return
	}
	resp.Body = &trackedBody{rc: resp.Body, b: b, retry: retry}
}

// trackedBody calls leave once, on EOF, a read error or Close.
type trackedBody struct {
	rc    io.ReadCloser
	b     *breaker
	retry bool
	done  atomic.Bool
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if err != nil {
		t.finish()
	}
	return n, err
}

func (t *trackedBody) Close() error {
	err := t.rc.Close()
	t.finish()
	return err
}

func (t *trackedBody) finish() {
	if !t.done.Swap(true) {
		t.b.leave(t.retry)
	}
}

// signal wakes pending requests (a connection closed or was parked idle).
func (b *breaker) signal() {
	if b.waiters.Load() == 0 {
		return
	}
	b.mu.Lock()
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

func (b *breaker) connClosed() {
	b.mu.Lock()
	b.conns--
	b.mu.Unlock()
	b.signal()
}

// openConns is the number of counted open connections.
func (b *breaker) openConns() int32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns
}

// connSlot is called by the HTTP/1.1 client when ep has no idle
// connection. It returns either an idle conn to reuse, or nil with a
// connection slot reserved for a dial (undo with unreserve on dial error).
func (u *Upstream) connSlot(ctx context.Context, ep *Endpoint) (*conn, error) {
	b := u.brk
	var timer *time.Timer
	waiting := false
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if waiting {
			b.waiters.Add(-1)
			b.mu.Lock()
			b.pending--
			b.mu.Unlock()
		}
	}()
	for {
		b.mu.Lock()
		if b.conns < b.cfg.MaxConnections {
			b.conns++
			b.mu.Unlock()
			return nil, nil
		}
		if !waiting {
			if max := b.cfg.MaxPendingRequests; max > 0 && b.pending >= max {
				b.mu.Unlock()
				return nil, overloaded(LimitPending, u.def.Name)
			}
			b.pending++
			b.waiters.Add(1)
			waiting = true
		}
		ch := b.wake
		b.mu.Unlock()
		if c := ep.pool.get(); c != nil {
			return c, nil
		}
		if u.evictIdle(ep) {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(u.opts.PendingTimeout)
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, overloaded(LimitConnections, u.def.Name)
		case <-ctx.Done():
			return nil, classify(ctx, ep.Address, ctx.Err(), false)
		}
	}
}

// unreserve gives back a slot reserved by connSlot whose dial failed.
func (b *breaker) unreserve() { b.connClosed() }

// evictIdle closes one idle connection of another endpoint; it reports
// whether it did.
func (u *Upstream) evictIdle(except *Endpoint) bool {
	for _, e := range u.Endpoints() {
		if e == except {
			continue
		}
		if c := e.pool.get(); c != nil {
			c.close()
			return true
		}
	}
	return false
}

// countedConn gives its breaker slot back when closed, once.
type countedConn struct {
	net.Conn
	b      *breaker
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	if !c.closed.Swap(true) {
		c.b.connClosed()
	}
	return err
}

// CloseWrite half-closes when the underlying connection can.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connOpened counts a connection opened without a reserved slot (h2).
func (b *breaker) connOpened() {
	b.mu.Lock()
	b.conns++
	b.mu.Unlock()
}

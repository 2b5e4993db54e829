package upstream

import (
	"slices"
	"sync"
	"time"
)

// pool is one endpoint's stack of idle keep-alive connections. LIFO keeps
// the hottest connections busy and lets the rest age out; because conns are
// pushed in time order, the stack is sorted by idle time, so staleness is
// checked at the top on take and swept from the bottom by a lazy timer (no
// goroutine per pool or per connection).
type pool struct {
	mu      sync.Mutex
	idle    []*conn
	closed  bool
	armed   bool
	timer   *time.Timer
	max     int
	timeout time.Duration
	notify  func() // set when a circuit breaker waits for idle conns
}

func (p *pool) init(max int, timeout time.Duration) {
	p.max, p.timeout = max, timeout
}

// get pops the most recently used idle connection, or returns nil.
func (p *pool) get() *conn {
	p.mu.Lock()
	n := len(p.idle)
	if n == 0 {
		p.mu.Unlock()
		return nil
	}
	c := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	if time.Since(c.idleAt) < p.timeout {
		p.mu.Unlock()
		return c
	}
	// The newest idle conn is stale, so all of them are.
	stale := append(slices.Clone(p.idle), c)
	clear(p.idle)
	p.idle = p.idle[:0]
	p.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
	return nil
}

// put parks c for reuse, or closes it if the pool is retired or full.
func (p *pool) put(c *conn) {
	c.idleAt = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.max {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	if !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(p.timeout, p.sweep)
		} else {
			p.timer.Reset(p.timeout)
		}
	}
	p.mu.Unlock()
	if p.notify != nil {
		p.notify()
	}
}

// sweep closes connections idle for longer than the timeout and re-arms
// itself while connections remain.
func (p *pool) sweep() {
	now := time.Now()
	p.mu.Lock()
	cut := 0
	for cut < len(p.idle) && now.Sub(p.idle[cut].idleAt) >= p.timeout {
		cut++
	}
	stale := slices.Clone(p.idle[:cut])
	n := copy(p.idle, p.idle[cut:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	p.armed = false
	if n > 0 && !p.closed {
		p.armed = true
		p.timer.Reset(p.timeout - now.Sub(p.idle[0].idleAt))
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
}

// closeAll retires the pool: idle conns close now, conns in use close when
// they are put back.
func (p *pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	if p.timer != nil {
		p.timer.Stop()
	}
	p.armed = false
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// idleLen reports the number of idle connections (tests, metrics).
func (p *pool) idleLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

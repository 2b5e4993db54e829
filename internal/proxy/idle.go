package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// idleWatch enforces a route's idle timeout: the longest silence allowed between
// body bytes in either direction (request body read from the client, response
// read from the upstream or written to the client), counted from the moment the
// request is sent upstream, so waiting for the response head counts too. When it
// fires, the request context is cancelled (aborting the upstream exchange) and
// the client connection's read deadline is set to now (unblocking a stalled
// request-body read); once the response has started, its write deadline too. The
// handler then answers 504 idle_timeout if nothing was sent yet, or aborts the
// response.
type idleWatch struct {
	d          int64 // nanoseconds
	last       atomic.Int64
	fired      atomic.Bool
	responding atomic.Bool
	cancel     context.CancelFunc
	rc         *http.ResponseController

	mu    sync.Mutex // orders check against stop (no deadline set after the handler)
	done  bool
	timer *time.Timer
}

// startIdle arms the idle timeout on r (whose context it replaces).
func (x *exchange) startIdle(w http.ResponseWriter, r *http.Request, d time.Duration) {
	ctx, cancel := context.WithCancel(r.Context())
	iw := &idleWatch{d: int64(d), cancel: cancel, rc: http.NewResponseController(w)}
	iw.touch()
	iw.mu.Lock()
	iw.timer = time.AfterFunc(d, iw.check)
	iw.mu.Unlock()
	x.idle = iw
	*r = *r.WithContext(ctx)
}

// touch records activity.
func (iw *idleWatch) touch() { iw.last.Store(nanotime()) }

func (iw *idleWatch) check() {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if iw.done {
		return
	}
	if quiet := nanotime() - iw.last.Load(); quiet < iw.d {
		iw.timer.Reset(time.Duration(iw.d - quiet))
		return
	}
	iw.fired.Store(true)
	iw.cancel()
	now := time.Now()
	_ = iw.rc.SetReadDeadline(now)
	if iw.responding.Load() {
		_ = iw.rc.SetWriteDeadline(now)
	}
}

// stop disarms the watch; after it returns no deadline is touched.
func (iw *idleWatch) stop() {
	iw.mu.Lock()
	iw.done = true
	iw.mu.Unlock()
	iw.timer.Stop()
	iw.cancel()
}

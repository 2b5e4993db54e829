package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/proxy/upstream"
)

// exchange is the per-request bookkeeping, pooled so the hot path does not
// allocate it. It never outlives ServeHTTP.
type exchange struct {
	start    time.Time
	st       *listenerState
	route    *compiledRoute
	reqID    string
	host     string // as the client sent it
	path     string // as the client sent it (after cleaning)
	status   int
	wrote    bool // response head sent (or connection hijacked)
	bytesIn  int64
	bytesOut int64
	endpoint string
	upDur    time.Duration
	body     *countingBody
	cancel   context.CancelFunc // route timeout

	try       upstream.Try       // balancer hints for the upstream (no allocation)
	avoid     [4]string          // backing array of try.Avoid
	tryCancel context.CancelFunc // per-try timeout of the try being relayed
	idle      *idleWatch         // route idle timeout
	plug      *plugState         // the route's plugin run; nil without plugins
}

var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

// ServeHTTP is the data-plane entry point of one listener. The compiled state is
// loaded once, so a swap during the request does not affect it.
//
// The incoming request is edited in place and sent upstream as is (its Header,
// URL and Host are ours for the duration of the handler), which saves cloning the
// request, its URL and its header map on every request.
func (hl *httpListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchangePool.Get().(*exchange)
	*x = exchange{start: time.Now(), st: hl.state.Load()}
	defer hl.finish(x, w, r)
	hl.serve(x, w, r)
}

// testHookServe, when set by a test, runs at the start of every request.
var testHookServe func(*http.Request)

func (hl *httpListener) serve(x *exchange, w http.ResponseWriter, r *http.Request) {
	st := x.st
	if testHookServe != nil {
		testHookServe(r)
	}
	if ids := r.Header[hdrRequestID]; len(ids) > 0 && ids[0] != "" {
		x.reqID = ids[0]
	} else {
		x.reqID = hl.rt.ids.next()
		r.Header[hdrRequestID] = []string{x.reqID}
	}
	w.Header()[hdrRequestID] = r.Header[hdrRequestID]
	if r.Method == http.MethodConnect {
		// Forward proxying is not a gateway's job (and HTTP/1.1 CONNECT has no path
		// to route on).
		x.fail(w, errMethodNotAllowed)
		return
	}
	if needsClean(r.URL.Path) {
		r.URL.Path = cleanPath(r.URL.Path)
		r.URL.RawPath = ""
	}
	x.host, x.path = r.Host, r.URL.Path

	var cr *compiledRoute
	for {
		id, ok := st.table.Match(r.Host, r)
		if !ok {
			x.fail(w, errRouteNotFound)
			return
		}
		cr = st.routes[id]
		if cr.plugins == nil || hl.hold(st) {
			break
		}
		st = hl.state.Load() // swapped meanwhile: route on the new configuration
		x.st = st
	}
	x.route = cr
	if cr.plugins != nil {
		// Plugins run after routing and before everything else the route does;
		// from here on responses go through the response phases (plugins.go).
		var ok bool
		if w, ok = hl.startPlugins(x, w, r, cr); !ok {
			return
		}
	}
	if rd := cr.redirect; rd != nil {
		h := w.Header()
		h[hdrLocation] = []string{rd.location(r, cr, st.port)}
		h[hdrLength] = valZero
		x.status, x.wrote = rd.status, true
		w.WriteHeader(rd.status)
		return
	}
	bi := cr.pick()
	if bi < 0 {
		x.fail(w, errNoBackend)
		return
	}
	if cr.fault != nil && cr.fault.apply(x, w, r) {
		return
	}
	upgrade := upgradeType(r)
	hl.prepare(x, w, r, cr, upgrade)
	if x.plug != nil && !x.plug.upstreamRequest(r) {
		return
	}
	if cr.policy && upgrade == "" {
		hl.forwardPolicy(x, w, r, cr, bi)
		return
	}

	x.try.Request, x.try.ClientIP = r, clientIP(r.RemoteAddr)
	upStart := time.Now()
	resp, ep, err := cr.backends[bi].RoundTripTry(r, &x.try)
	x.upDur = time.Since(upStart)
	x.endpoint = ep
	if err != nil {
		x.upstreamFailed(w, r, err)
		return
	}
	if upgrade != "" && resp.StatusCode == http.StatusSwitchingProtocols {
		hl.upgrade(x, w, resp)
		return
	}
	x.copyResponse(w, r, resp)
}

// prepare turns the client's request into the upstream request.
func (hl *httpListener) prepare(x *exchange, w http.ResponseWriter, r *http.Request, cr *compiledRoute, upgrade string) {
	h := r.Header
	removeHopHeaders(h, upgrade != "")
	if upgrade != "" {
		h[hdrConnection] = valUpgrade
	} else {
		// Upgraded sessions are long-lived by nature: the route and idle timeouts
		// bound ordinary requests only.
		if cr.timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), cr.timeout)
			x.cancel = cancel
			*r = *r.WithContext(ctx)
		}
		if cr.idle > 0 {
			x.startIdle(w, r, cr.idle)
		}
	}
	setForwarded(h, r, clientIP(r.RemoteAddr))
	cr.reqHeaders.apply(h)
	if cr.rewrite != nil {
		if p := cr.rewrite.apply(r.URL.Path, cr.prefix, cr.isPrefix); p != r.URL.Path {
			r.URL.Path, r.URL.RawPath = p, ""
		}
	}
	if cr.hostname != "" {
		r.Host = cr.hostname
	}
	r.RequestURI = ""
	r.Close = false
	if r.Body != nil && r.Body != http.NoBody {
		x.body = &countingBody{rc: r.Body, idle: x.idle}
		r.Body = x.body
	}
}

// pick chooses a backend by weight and returns its index; -1 when the route
// has none.
func (cr *compiledRoute) pick() int {
	switch len(cr.backends) {
	case 0:
		return -1
	case 1:
		return 0
	}
	n := rand.Uint64N(cr.total)
	return sort.Search(len(cr.cumul), func(i int) bool { return cr.cumul[i] > n })
}

// fail answers with a gateway error.
func (x *exchange) fail(w http.ResponseWriter, e *gatewayError) {
	x.status, x.wrote = e.status, true
	x.bytesOut += e.write(w)
}

// upstreamFailed answers a failed round trip, or only records 499 when the
// client is gone (nobody to answer).
func (x *exchange) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if x.clientGone(r) {
		x.status = statusClientClosed
		return
	}
	if x.idle != nil && x.idle.fired.Load() {
		x.fail(w, errIdleTimeout)
		return
	}
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Kind == upstream.Overloaded {
		limit := ue.Limit
		if limit == "" {
			limit = "unknown"
		}
		w.Header()[hdrOverloaded] = []string{limit}
	}
	x.fail(w, classify(err, r.Context()))
}

// bodyFailed answers a request whose body could not be read for buffering.
func (x *exchange) bodyFailed(w http.ResponseWriter, r *http.Request) {
	switch {
	case x.idle != nil && x.idle.fired.Load():
		x.fail(w, errIdleTimeout)
	case x.clientGone(r):
		x.status = statusClientClosed
	default:
		x.fail(w, errBadRequestBody)
	}
}

// clientGone reports whether the client cancelled (as opposed to our route
// timeout firing).
func (x *exchange) clientGone(r *http.Request) bool {
	ctx := r.Context()
	if ctx.Err() == nil || (x.idle != nil && x.idle.fired.Load()) {
		return false
	}
	if x.cancel != nil && ctx.Err() == context.DeadlineExceeded {
		return false
	}
	return true
}

// finish records the request (metrics, access log), recovers a panic, and
// recycles the exchange.
func (hl *httpListener) finish(x *exchange, w http.ResponseWriter, r *http.Request) {
	p := recover()
	if p != nil && p != http.ErrAbortHandler {
		hl.rt.log.Error("panic serving request", "listener", hl.name, "request_id", x.reqID,
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if !x.wrote {
			x.fail(w, errInternal)
		} else {
			x.status = http.StatusInternalServerError
		}
	}
	if x.idle != nil {
		x.idle.stop()
	}
	if x.tryCancel != nil {
		x.tryCancel()
	}
	if x.cancel != nil {
		x.cancel()
	}
	if x.body != nil {
		x.bytesIn = x.body.n.Load()
	}
	if x.status == 0 {
		x.status = statusClientClosed
	}
	consumer := ""
	if x.plug != nil {
		consumer = x.plug.finish(x, p != nil)
	}
	dur := time.Since(x.start)
	rm, gw, route := x.st.notFound, x.st.gateway, ""
	if x.route != nil {
		rm, gw, route = x.route.metrics, x.route.gateway, x.route.name
	}
	rm.Observe(x.status, dur, x.upDur)
	if al := hl.rt.opts.AccessLog; al != nil {
		al.Log(&observe.AccessEntry{
			Time: x.start, RequestID: x.reqID, Gateway: gw, Route: route, Consumer: consumer,
			Method: r.Method, Host: x.host, Path: x.path, Status: x.status,
			Upstream: x.endpoint, Duration: dur, UpstreamDuration: x.upDur,
			BytesIn: x.bytesIn, BytesOut: x.bytesOut,
			RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent(),
		})
	}
	*x = exchange{}
	exchangePool.Put(x)
	if p == http.ErrAbortHandler {
		panic(p) // net/http resets the stream/connection quietly
	}
}

var valZero = []string{"0"}[:1:1]

// countingBody counts request body bytes read by the upstream client. The count
// is atomic because a client may still read (and close) the body from its own
// goroutine after the response arrived.
type countingBody struct {
	rc   io.ReadCloser
	n    atomic.Int64
	idle *idleWatch // nil without an idle timeout
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	if b.idle != nil {
		b.idle.touch()
	}
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

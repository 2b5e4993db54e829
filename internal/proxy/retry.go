package proxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"syscall"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/proxy/upstream"
)

// Retry conditions (ir.Retry.On), as a bit set.
const (
	onConnectFailure = 1 << iota
	onReset
	onGatewayError
	on5xx
	onStatusCodes
)

// Backoff defaults when the IR leaves them zero (translation fills them).
const (
	defaultBackoffBase = 25 * time.Millisecond
	defaultBackoffMax  = 250 * time.Millisecond
)

// maxBufferedBody is the largest request body kept in memory so that it can be
// replayed on a retry or copied to a mirror. Larger bodies are streamed once.
const maxBufferedBody = 64 << 10

// retryPolicy is a compiled ir.Retry. What is retried (see docs/architecture.md):
//
//   - connect-failure: the upstream could not be reached (ConnectFailed);
//   - reset: the connection broke before a complete response head (Reset), or the
//     try timed out (per-try timeout, or the upstream's connect / response-header
//     timeouts: Timeout while the route's own deadline is still running);
//   - gateway-error: 502, 503 and 504 responses, plus everything connect-failure
//     and reset cover, plus a malformed response (Protocol): every failure the
//     client would otherwise see as a 502 or 504;
//   - 5xx: any 5xx response, plus everything gateway-error covers;
//   - retriable-status-codes: the listed response statuses.
//
// Never retried: the whole-request (route) timeout or idle timeout having fired,
// a client that left, no endpoint to pick (NoEndpoints), a circuit-breaker
// rejection (Overloaded: local overload, retrying would add to it), upgrade
// requests, and requests whose body cannot be replayed.
type retryPolicy struct {
	attempts      int
	on            uint8
	codes         []int
	perTry        time.Duration
	base, max     time.Duration
	nonIdempotent bool
}

func compileRetry(r *ir.Retry) *retryPolicy {
	if r == nil || (r.Attempts <= 0 && r.PerTryTimeoutMillis <= 0) {
		return nil
	}
	p := &retryPolicy{
		attempts:      int(max(r.Attempts, 0)),
		perTry:        time.Duration(r.PerTryTimeoutMillis) * time.Millisecond,
		base:          time.Duration(r.BackoffBaseMillis) * time.Millisecond,
		max:           time.Duration(r.BackoffMaxMillis) * time.Millisecond,
		nonIdempotent: r.NonIdempotent,
	}
	for _, c := range r.On {
		switch c {
		case "connect-failure":
			p.on |= onConnectFailure
		case "reset":
			p.on |= onReset
		case "gateway-error":
			p.on |= onGatewayError
		case "5xx":
			p.on |= on5xx
		case "retriable-status-codes":
			p.on |= onStatusCodes
		}
	}
	for _, c := range r.StatusCodes {
		p.codes = append(p.codes, int(c))
	}
	if p.base <= 0 {
		p.base = defaultBackoffBase
	}
	if p.max <= 0 {
		p.max = defaultBackoffMax
	}
	p.max = max(p.max, p.base)
	return p
}

// retryableStatus reports whether a response status calls for a retry.
func (p *retryPolicy) retryableStatus(code int) bool {
	switch {
	case p.on&on5xx != 0 && code >= 500 && code <= 599:
		return true
	case p.on&onGatewayError != 0 && (code == 502 || code == 503 || code == 504):
		return true
	case p.on&onStatusCodes != 0:
		for _, c := range p.codes {
			if c == code {
				return true
			}
		}
	}
	return false
}

// retryableError reports whether a failed try calls for a retry. parent is the
// request's context without the per-try timeout.
func (p *retryPolicy) retryableError(err error, parent context.Context) bool {
	if parent.Err() != nil {
		return false // client gone, route or idle timeout: nothing to retry for
	}
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		return false
	}
	switch ue.Kind {
	case upstream.ConnectFailed:
		return p.on&(onConnectFailure|onGatewayError|on5xx) != 0
	case upstream.Reset, upstream.Timeout:
		return p.on&(onReset|onGatewayError|on5xx) != 0
	case upstream.Protocol:
		return p.on&(onGatewayError|on5xx) != 0
	}
	return false
}

// backoff returns the pause before retry number n (0 for the first retry):
// full jitter, uniform in [0, min(max, base×2ⁿ)].
func (p *retryPolicy) backoff(n int) time.Duration {
	c := p.max
	if n < 30 {
		if e := p.base << n; e > 0 && e < c {
			c = e
		}
	}
	return time.Duration(rand.Int64N(int64(c) + 1))
}

// Test hooks: testHookBackoff sees every backoff chosen, testHookTry the
// endpoints each try asks the balancer to avoid.
var (
	testHookBackoff func(n int, d time.Duration)
	testHookTry     func(avoid []string)
)

// idempotent reports whether RFC 9110 calls the method idempotent.
func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// forwardPolicy forwards a request of a route with a retry policy or a mirror
// (never an upgrade). cr.backends[bi] is the chosen upstream.
func (hl *httpListener) forwardPolicy(x *exchange, w http.ResponseWriter, r *http.Request, cr *compiledRoute, bi int) {
	up := cr.backends[bi]
	pol := cr.retry
	var st *upstreamState
	var tc *observe.TrafficCounters
	canRetry := false
	if pol != nil {
		st, tc = cr.states[bi], cr.stats[bi]
		st.budget.request(nanotime())
		canRetry = pol.attempts > 0 && (pol.nonIdempotent || idempotent(r.Method))
	}
	mirror := cr.mirror != nil && sampled(cr.mirror.percent)
	var body []byte
	if canRetry || mirror {
		b, ok, err := bufferBody(r)
		if err != nil {
			x.bodyFailed(w, r)
			return
		}
		body = b
		if !ok {
			canRetry = false
			if mirror {
				cr.mirror.stats.Mirror(observe.MirrorBodyTooLarge)
				mirror = false
			}
		}
	}
	if mirror {
		cr.mirror.send(r, body, cr.timeout)
	}

	parent := r.Context()
	x.try.ClientIP = clientIP(r.RemoteAddr)
	x.try.Avoid = x.avoid[:0]
	upStart := time.Now()
	var resp *http.Response
	var err error
	for n := 0; ; n++ {
		if n > 0 && len(body) > 0 {
			r.Body = &replayBody{b: body}
		}
		ar := r
		if pol != nil && pol.perTry > 0 {
			ctx, cancel := context.WithTimeout(parent, pol.perTry)
			x.tryCancel = cancel
			ar = r.WithContext(ctx)
		}
		x.try.Request, x.try.Retry = ar, n > 0
		if x.idle != nil {
			x.idle.touch()
		}
		if testHookTry != nil {
			testHookTry(x.try.Avoid)
		}
		var ep string
		resp, ep, err = up.RoundTripTry(ar, &x.try)
		x.endpoint = ep
		if !canRetry || n >= pol.attempts {
			break
		}
		if err != nil {
			if !pol.retryableError(err, parent) {
				break
			}
		} else if !pol.retryableStatus(resp.StatusCode) || parent.Err() != nil {
			break
		}
		if !unreachable(err) && !st.budget.allow(nanotime()) {
			tc.Retry(false)
			break
		}
		tc.Retry(true)
		if resp != nil {
			discard(resp)
			resp = nil
		}
		if x.tryCancel != nil {
			x.tryCancel()
			x.tryCancel = nil
		}
		if ep != "" {
			x.try.Avoid = append(x.try.Avoid, ep)
		}
		d := pol.backoff(n)
		if testHookBackoff != nil {
			testHookBackoff(n, d)
		}
		if !sleepCtx(parent, d) {
			err = parent.Err()
			break
		}
	}
	x.upDur = time.Since(upStart)
	if err != nil {
		x.upstreamFailed(w, r, err)
		return
	}
	x.copyResponse(w, r, resp)
}

// unreachable reports whether a try failed because nothing listens at the
// endpoint (connection refused) or it cannot be routed to: nothing reached the
// upstream's application, so retrying adds no load there and spends no budget.
func unreachable(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH))
}

// sleepCtx waits d unless ctx ends first; it reports whether the wait completed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// discard drains a small response body (so its connection can be reused) and
// closes it. Bodies of unknown or large size are closed without draining.
func discard(resp *http.Response) {
	if n := resp.ContentLength; n > 0 && n <= maxBufferedBody {
		_, _ = io.CopyN(io.Discard, resp.Body, n)
	}
	_ = resp.Body.Close()
}

// bufferBody reads the request body into memory when its declared length is at
// most maxBufferedBody, so it can be replayed; r.Body and GetBody are set to
// serve it. ok is false for a larger body, or one of unknown length (chunked,
// gRPC and other streams: a streaming client may wait for the response before
// sending more, so waiting for the end of its body could deadlock); it is then
// streamed once, as is. An empty body is replayable (nil, true).
func bufferBody(r *http.Request) (body []byte, ok bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true, nil
	}
	if r.ContentLength < 0 || r.ContentLength > maxBufferedBody {
		return nil, false, nil
	}
	// The server's body ends at the declared length (a short one is an error).
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		return nil, false, err
	}
	_ = r.Body.Close()
	if len(buf) == 0 {
		r.Body = http.NoBody
		return nil, true, nil
	}
	r.Body = &replayBody{b: buf}
	r.GetBody = func() (io.ReadCloser, error) { return &replayBody{b: buf}, nil }
	return buf, true, nil
}

// replayBody reads a buffered request body; each try gets its own.
type replayBody struct {
	b   []byte
	off int
}

func (b *replayBody) Read(p []byte) (int, error) {
	if b.off >= len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.off:])
	b.off += n
	return n, nil
}

func (b *replayBody) Close() error { return nil }

package proxy

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/proxy/upstream"
)

// Mirroring (ir.Mirror): a sampled share of a route's requests is copied to
// another upstream in the background. The copy carries the request as it goes
// upstream (after filters and forwarding headers), with its body when that fits
// maxBufferedBody (larger ones are not mirrored and are counted as
// body_too_large), and with "-shadow" appended to the host name, as Envoy does,
// so the mirror can tell shadow traffic apart ("api.example.com:8080" becomes
// "api.example.com-shadow:8080"). The mirror's response is drained and thrown
// away; it never delays or changes the client's response. At most
// maxMirrorInFlight copies per mirror upstream run at once: beyond that, copies
// are dropped (dropped_in_flight) rather than queued.
const (
	maxMirrorInFlight    = 64
	defaultMirrorTimeout = 10 * time.Second
)

// mirrorPolicy is a compiled ir.Mirror.
type mirrorPolicy struct {
	up      *upstream.Upstream
	state   *upstreamState
	stats   *observe.TrafficCounters
	percent float64
}

// sampled reports whether a request falls in a pct% sample.
func sampled(pct float64) bool {
	if pct >= 100 {
		return true
	}
	return pct > 0 && rand.Float64()*100 < pct
}

// testHookMirrorDone, when set by a test, runs when a mirrored request ends.
var testHookMirrorDone atomic.Pointer[func()]

// send starts the copy of r (whose body, if any, is body) unless too many copies
// are in flight. timeout bounds the copy (the route timeout, or a default).
func (m *mirrorPolicy) send(r *http.Request, body []byte, timeout time.Duration) {
	if m.state.mirrorInFlight.Add(1) > maxMirrorInFlight {
		m.state.mirrorInFlight.Add(-1)
		m.stats.Mirror(observe.MirrorDroppedInFlight)
		return
	}
	if timeout <= 0 {
		timeout = defaultMirrorTimeout
	}
	// Deep copies: the client's request (its header map, URL) is reused once the
	// handler returns, and the copy may outlive it.
	u := *r.URL
	mr := &http.Request{
		Method:     r.Method,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     r.Header.Clone(),
		Host:       shadowHost(r.Host),
		RemoteAddr: r.RemoteAddr,
		Body:       http.NoBody,
	}
	if len(body) > 0 {
		mr.Body = &replayBody{b: body}
		mr.ContentLength = int64(len(body))
		mr.GetBody = func() (io.ReadCloser, error) { return &replayBody{b: body}, nil }
	}
	go m.run(mr, timeout)
}

func (m *mirrorPolicy) run(mr *http.Request, timeout time.Duration) {
	defer func() {
		m.state.mirrorInFlight.Add(-1)
		if h := testHookMirrorDone.Load(); h != nil {
			(*h)()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, _, err := m.up.RoundTrip(mr.WithContext(ctx))
	if err != nil {
		m.stats.Mirror(observe.MirrorFailed)
		return
	}
	discard(resp)
	m.stats.Mirror(observe.MirrorSent)
}

// shadowHost appends "-shadow" to the host name, keeping a port.
func shadowHost(h string) string {
	if host, port, err := net.SplitHostPort(h); err == nil {
		return net.JoinHostPort(host+"-shadow", port)
	}
	return h + "-shadow"
}

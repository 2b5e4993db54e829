package upstream

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// holdServer answers once release is closed; inflight counts waiting handlers.
type holdServer struct {
	*httptest.Server
	inflight atomic.Int32
	release  chan struct{}
	conns    atomic.Int32
}

func newHoldServer(t *testing.T) *holdServer {
	h := &holdServer{release: make(chan struct{})}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.inflight.Add(1)
		defer h.inflight.Add(-1)
		<-h.release
		io.WriteString(w, "ok")
	}))
	h.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.conns.Add(1)
		}
	}
	h.Start()
	t.Cleanup(h.Close)
	return h
}

func breakerDef(cb ir.CircuitBreaker, addr string) ir.Upstream {
	def := ir.Upstream{Name: "cb", Endpoints: []ir.Endpoint{{Address: addr, Weight: 1}}}
	def.CircuitBreaker = &cb
	return def
}

func limitOf(err error) string {
	var ue *Error
	if errors.As(err, &ue) && ue.Kind == Overloaded {
		return ue.Limit
	}
	return ""
}

// fire starts n requests (t.Retry = retry) and returns their errors on a channel.
func fire(t *testing.T, u *Upstream, n int, retry bool) <-chan error {
	out := make(chan error, n)
	for range n {
		go func() {
			resp, _, err := u.RoundTripTry(newReq(t, "GET", "/"), &Try{Retry: retry})
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			out <- err
		}()
	}
	return out
}

func TestMaxRequestsAndRetries(t *testing.T) {
	for _, proto := range []string{ir.UpstreamHTTP, ir.UpstreamH2C} {
		t.Run(proto, func(t *testing.T) {
			srv := newHoldServer(t)
			if proto == ir.UpstreamH2C {
				srv.Close()
				srv = &holdServer{release: make(chan struct{})}
				srv.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					srv.inflight.Add(1)
					defer srv.inflight.Add(-1)
					<-srv.release
					io.WriteString(w, "ok")
				}))
				srv.Config.Protocols = new(http.Protocols)
				srv.Config.Protocols.SetUnencryptedHTTP2(true)
				srv.Start()
				t.Cleanup(srv.Close)
			}
			def := breakerDef(ir.CircuitBreaker{MaxRequests: 3, MaxRetries: 1}, srv.Listener.Addr().String())
			def.Protocol = proto
			_, u := buildDef(t, testOpts(), def)
			first := fire(t, u, 2, false)
			retries := fire(t, u, 1, true)
			waitFor(t, "3 in flight", func() bool { return srv.inflight.Load() == 3 })
			_, _, err := u.RoundTripTry(newReq(t, "GET", "/"), &Try{Retry: false})
			if limitOf(err) != LimitRequests {
				t.Fatalf("4th request: %v, want max-requests", err)
			}
			close(srv.release)
			for range 2 {
				if err := <-first; err != nil {
					t.Fatal(err)
				}
			}
			if err := <-retries; err != nil {
				t.Fatal(err)
			}
			// The retry slot is free again once the body was read; with one
			// retry held open (body not closed), a second retry is refused.
			resp, _, err := u.RoundTripTry(newReq(t, "GET", "/"), &Try{Retry: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := u.RoundTripTry(newReq(t, "GET", "/"), &Try{Retry: true}); limitOf(err) != LimitRetries {
				t.Fatalf("2nd retry: %v, want max-retries", err)
			}
			resp.Body.Close()
			if u.brk.requests.Load() != 0 || u.brk.retries.Load() != 0 {
				t.Fatalf("leaked: %d requests, %d retries", u.brk.requests.Load(), u.brk.retries.Load())
			}
		})
	}
}

// TestMaxConnectionsAndPending: 2 connections busy; a 3rd request waits
// (pending) and is served on a freed connection; a 4th is refused as
// max-pending-requests; a pending request that waits too long gets
// max-connections.
func TestMaxConnectionsAndPending(t *testing.T) {
	srv := newHoldServer(t)
	opts := testOpts()
	opts.PendingTimeout = 5 * time.Second
	_, u := buildDef(t, opts, breakerDef(ir.CircuitBreaker{MaxConnections: 2, MaxPendingRequests: 1},
		srv.Listener.Addr().String()))
	busy := fire(t, u, 2, false)
	waitFor(t, "2 in flight", func() bool { return srv.inflight.Load() == 2 })
	pending := fire(t, u, 1, false)
	waitFor(t, "1 pending", func() bool { u.brk.mu.Lock(); defer u.brk.mu.Unlock(); return u.brk.pending == 1 })
	if _, _, err := u.RoundTrip(newReq(t, "GET", "/")); limitOf(err) != LimitPending {
		t.Fatalf("4th request: %v, want max-pending-requests", err)
	}
	close(srv.release)
	for _, ch := range []<-chan error{busy, busy, pending} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.conns.Load(); n != 2 {
		t.Fatalf("server saw %d connections, want 2", n)
	}
	if n := u.brk.openConns(); n != 2 {
		t.Fatalf("open conns = %d, want 2 (idle)", n)
	}

	srv2 := newHoldServer(t)
	opts.PendingTimeout = 100 * time.Millisecond
	_, u2 := buildDef(t, opts, breakerDef(ir.CircuitBreaker{MaxConnections: 1}, srv2.Listener.Addr().String()))
	held := fire(t, u2, 1, false)
	waitFor(t, "1 in flight", func() bool { return srv2.inflight.Load() == 1 })
	start := time.Now()
	if _, _, err := u2.RoundTrip(newReq(t, "GET", "/")); limitOf(err) != LimitConnections {
		t.Fatalf("waiting request: %v, want max-connections", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > time.Second {
		t.Fatalf("pending wait %v, want ~100ms", d)
	}
	close(srv2.release)
	<-held
	u2.retire()
	waitFor(t, "conns closed", func() bool { return u2.brk.openConns() == 0 })
}

// TestMaxConnectionsEvictsIdleElsewhere: a slot held by an idle connection
// of another endpoint is freed for a request that needs a new one.
func TestMaxConnectionsEvictsIdleElsewhere(t *testing.T) {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer b.Close()
	def := breakerDef(ir.CircuitBreaker{MaxConnections: 1}, a.Listener.Addr().String())
	def.Endpoints = append(def.Endpoints, ir.Endpoint{Address: b.Listener.Addr().String(), Weight: 1})
	_, u := buildDef(t, testOpts(), def)
	for range 4 { // alternates endpoints; each needs the other's idle conn closed
		resp, _, err := u.RoundTrip(newReq(t, "GET", "/"))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := u.brk.openConns(); n != 1 {
			t.Fatalf("open conns = %d", n)
		}
	}
}

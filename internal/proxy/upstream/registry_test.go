package upstream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

func TestBuildReusesUnchanged(t *testing.T) {
	r := NewRegistry(testOpts())
	defer r.Close()
	defs := []ir.Upstream{
		{Name: "a", Endpoints: []ir.Endpoint{{Address: "127.0.0.1:1", Weight: 1, Labels: map[string]string{}}}},
		{Name: "b", Protocol: "h2c", Endpoints: []ir.Endpoint{{Address: "127.0.0.1:2", Weight: 1}}},
	}
	m1, err := r.Build(defs)
	if err != nil {
		t.Fatal(err)
	}
	defs[0].Endpoints = []ir.Endpoint{{Address: "127.0.0.1:1", Weight: 1}} // nil labels == empty
	m2, _ := r.Build(defs)
	if m1["a"] != m2["a"] || m1["b"] != m2["b"] {
		t.Fatal("unchanged upstreams were rebuilt")
	}
	defs[1].Endpoints[0].Weight = 2
	m3, _ := r.Build(defs)
	if m3["a"] != m1["a"] || m3["b"] == m1["b"] {
		t.Fatal("changed upstream was not rebuilt (or unchanged one was)")
	}
	if m3["b"].Name() != "b" {
		t.Fatal("name")
	}
	if _, err := r.Build([]ir.Upstream{{Name: "x", Protocol: "gopher"}}); err == nil {
		t.Fatal("unknown protocol accepted")
	}
}

func TestReleaseClosesIdleAndSparesInFlight(t *testing.T) {
	closed := make(chan struct{}, 4)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		defer func() { closed <- struct{}{} }()
		for {
			line, _, _, ok := readReq(br)
			if !ok {
				return
			}
			if line == "GET /slow HTTP/1.1" {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"))
				time.Sleep(100 * time.Millisecond)
				c.Write([]byte("world"))
				continue
			}
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		}
	})
	r := NewRegistry(testOpts())
	defer r.Close()
	def := ir.Upstream{Name: "u", Endpoints: []ir.Endpoint{{Address: srv.addr(), Weight: 1}}}
	m1, _ := r.Build([]ir.Upstream{def})
	u := m1["u"]
	slow, _, err := u.RoundTrip(newReq(t, "GET", "/slow"))
	if err != nil {
		t.Fatal(err)
	}
	mustRT(t, u, newReq(t, "GET", "/")) // a second conn, left idle
	if u.Endpoints()[0].pool.idleLen() != 1 {
		t.Fatal("want one idle conn")
	}
	// Swap to a changed definition and release the old one.
	def.Algorithm = "round-robin"
	m2, _ := r.Build([]ir.Upstream{def})
	if m2["u"] == u {
		t.Fatal("changed def reused")
	}
	r.Release(m2)
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("idle conn not closed on Release")
	}
	// The in-flight response completes; its conn then closes.
	b, err := io.ReadAll(slow.Body)
	if err != nil || string(b) != "helloworld" {
		t.Fatalf("in-flight body %q %v", b, err)
	}
	slow.Body.Close()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("retired conn not closed after its request")
	}
	// A request still holding the retired upstream works.
	mustRT(t, u, newReq(t, "GET", "/"))
	if u.Endpoints()[0].pool.idleLen() != 0 {
		t.Fatal("retired upstream pooled a conn")
	}
	mustRT(t, m2["u"], newReq(t, "GET", "/"))
}

func TestIdleTimeoutSweep(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		keepAliveOK(c, br)
		closed <- struct{}{}
	})
	opts := testOpts()
	opts.IdleConnTimeout = 50 * time.Millisecond
	_, u := oneUpstream(t, "http", nil, opts, srv.addr())
	mustRT(t, u, newReq(t, "GET", "/"))
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("idle conn not swept")
	}
	waitFor(t, "empty pool", func() bool { return u.Endpoints()[0].pool.idleLen() == 0 })
	mustRT(t, u, newReq(t, "GET", "/"))
	if srv.accepts.Load() != 2 {
		t.Fatal("expected a fresh conn after the sweep")
	}
}

// Load through repeated swaps against a server that drops idle conns
// quickly: no request may fail.
func TestNoFailuresUnderReloadAndIdleCloses(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.IdleTimeout = 3 * time.Millisecond
	srv.Start()
	defer srv.Close()
	r := NewRegistry(testOpts())
	defer r.Close()
	def := ir.Upstream{Name: "u", Endpoints: []ir.Endpoint{{Address: srv.Listener.Addr().String(), Weight: 1}}}
	m, _ := r.Build([]ir.Upstream{def})
	var cur atomic.Pointer[Upstream]
	cur.Store(m["u"])
	stop := make(chan struct{})
	swaps := make(chan struct{})
	go func() {
		defer close(swaps)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			def.Endpoints[0].Weight = int32(1 + i%2) // a changed definition each time
			m, err := r.Build([]ir.Upstream{def})
			if err != nil {
				t.Error(err)
				return
			}
			cur.Store(m["u"])
			r.Release(m)
		}
	}()
	var failed atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				resp, _, err := cur.Load().RoundTrip(newReq(t, "GET", "/"))
				if err != nil {
					t.Log(err)
					failed.Add(1)
					continue
				}
				if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
					failed.Add(1)
				}
				resp.Body.Close()
				time.Sleep(time.Duration(i%5) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-swaps
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed", n)
	}
}

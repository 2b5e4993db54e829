package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
)

func refused(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return true
}

func TestApplyAtomicity(t *testing.T) {
	e := newEnv(t)
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	p1 := freePort(t)
	ups := []ir.Upstream{upstreamFor("a", addrOf(a)), upstreamFor("b", addrOf(b))}
	good := simpleSnapshot(p1, ups, prefixRoute("r", "/", "a"))
	e.apply(t, good)
	cl := newClient()

	// Invalid snapshot.
	bad := simpleSnapshot(p1, ups, prefixRoute("r", "/", "missing"))
	if err := e.rt.Apply(bad); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("invalid snapshot: %v", err)
	}
	// A port in use, next to a change that would otherwise apply and a new
	// listener that can bind: nothing may change.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	p3 := freePort(t)
	next := simpleSnapshot(p1, ups, prefixRoute("r", "/", "b"))
	l3 := httpListenerIR(p3, anyHost(prefixRoute("r3", "/", "b")))
	l3.Gateways = []string{"edge/extra"}
	lb := httpListenerIR(busyPort, anyHost(prefixRoute("rb", "/", "b")))
	lb.Gateways = []string{"edge/busy"}
	next.Listeners = append(next.Listeners, l3, lb)
	next.ComputeVersion()
	err = e.rt.Apply(next)
	if err == nil || !strings.Contains(err.Error(), "edge/busy") || !strings.Contains(err.Error(), "127.0.0.1:"+itoa(busyPort)) {
		t.Fatalf("port in use: err = %v", err)
	}
	if r := get(t, cl, base(p1)+"/"); r.echo.Backend != "a" {
		t.Fatalf("old config not serving: %+v", r.echo)
	}
	if !refused(p3) {
		t.Fatal("listener bound by the failed Apply is still open")
	}
	if e.rt.Snapshot().Version != good.Version {
		t.Fatal("Snapshot() changed after failed Apply")
	}
	if v := observe.Value(e.metrics.Registry, "portico_config_reload_errors_total"); v != 2 {
		t.Errorf("reload errors = %v", v)
	}
	// After the port frees up the same snapshot applies.
	busy.Close()
	e.apply(t, next)
	if r := get(t, cl, base(p1)+"/"); r.echo.Backend != "b" {
		t.Fatalf("new config not serving: %+v", r.echo)
	}
	if r := get(t, cl, base(busyPort)+"/"); r.echo.Backend != "b" {
		t.Fatalf("new listener: %+v", r.echo)
	}
}

func TestListenerAddedAndRemoved(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	ups := []ir.Upstream{upstreamFor("a", addrOf(a))}
	p1, p2 := freePort(t), freePort(t)
	e.apply(t, simpleSnapshot(p1, ups, prefixRoute("r", "/", "a")))
	both := simpleSnapshot(p1, ups, prefixRoute("r", "/", "a"))
	both.Listeners = append(both.Listeners, httpListenerIR(p2, anyHost(prefixRoute("r2", "/", "a"))))
	both.ComputeVersion()
	e.apply(t, both)
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for _, p := range []int{p1, p2} {
		if r := get(t, cl, base(p)+"/"); r.status != 200 {
			t.Fatalf("port %d: %d", p, r.status)
		}
	}
	only2 := simpleSnapshot(p2, ups, prefixRoute("r2", "/", "a"))
	e.apply(t, only2)
	waitFor(t, func() bool { return refused(p1) })
	if r := get(t, cl, base(p2)+"/"); r.status != 200 {
		t.Fatalf("remaining listener: %d", r.status)
	}
}

// slowBackend answers after d, or when released.
func slowBackend(t *testing.T, name string, d time.Duration) (addr string, started chan struct{}) {
	started = make(chan struct{}, 8)
	s := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(d)
		w.Header().Set("X-Backend", name)
		w.Write([]byte("slow done"))
	})
	return addrOf(s), started
}

func TestSwapDuringInFlightRequest(t *testing.T) {
	for _, removeListener := range []bool{false, true} {
		e := newEnv(t)
		slowAddr, started := slowBackend(t, "slow", 700*time.Millisecond)
		b := echoBackend(t, "b")
		p1, p2 := freePort(t), freePort(t)
		ups := []ir.Upstream{upstreamFor("slow", slowAddr), upstreamFor("b", addrOf(b))}
		e.apply(t, simpleSnapshot(p1, ups, prefixRoute("r", "/", "slow")))

		done := make(chan result, 1)
		go func() { done <- get(t, newClient(), base(p1)+"/slow") }()
		<-started
		next := simpleSnapshot(p1, ups, prefixRoute("r", "/", "b"))
		if removeListener {
			next = simpleSnapshot(p2, ups, prefixRoute("r", "/", "b"))
		}
		t0 := time.Now()
		e.apply(t, next)
		if d := time.Since(t0); d > 200*time.Millisecond {
			t.Errorf("swap waited %v for the in-flight request", d)
		}
		if !removeListener {
			if r := get(t, newClient(), base(p1)+"/"); r.echo.Backend != "b" {
				t.Errorf("new request not on new config: %+v", r.echo)
			}
		}
		r := <-done
		if r.status != 200 || string(r.body) != "slow done" {
			t.Errorf("remove=%v: in-flight request got %d %q", removeListener, r.status, r.body)
		}
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	e := newEnv(t)
	slowAddr, started := slowBackend(t, "slow", 500*time.Millisecond)
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("slow", slowAddr)}, prefixRoute("r", "/", "slow")))
	done := make(chan result, 1)
	go func() { done <- get(t, newClient(), base(port)+"/") }()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := e.rt.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("Shutdown returned after %v, before the request finished", d)
	}
	if r := <-done; r.status != 200 || string(r.body) != "slow done" {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
	if !refused(port) {
		t.Fatal("still accepting after Shutdown")
	}
	if err := e.rt.Apply(simpleSnapshot(port, nil)); err != ErrShutdown {
		t.Fatalf("Apply after Shutdown: %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t)
	slowAddr, started := slowBackend(t, "slow", 3*time.Second)
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("slow", slowAddr)}, prefixRoute("r", "/", "slow")))
	go func() {
		resp, err := newClient().Get(base(port) + "/")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := e.rt.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown past its deadline returned nil")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Shutdown overran its deadline: %v", d)
	}
}

func TestMetricsAndAccessLog(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	port := freePort(t)
	s := simpleSnapshot(port, []ir.Upstream{upstreamFor("a", addrOf(a))}, prefixRoute("ns/r", "/api", "a"))
	e.apply(t, s)
	cl := newClient()
	for i := 0; i < 3; i++ {
		get(t, cl, base(port)+"/api/x")
	}
	get(t, cl, base(port)+"/nowhere")
	reg := e.metrics.Registry
	if v := observe.Value(reg, "portico_http_requests_total", "gateway", "default/http", "route", "ns/r", "status", "2xx"); v != 3 {
		t.Errorf("2xx = %v", v)
	}
	if v := observe.Value(reg, "portico_http_requests_total", "route", "", "status", "4xx"); v != 1 {
		t.Errorf("404s = %v", v)
	}
	if v := observe.Value(reg, "portico_http_request_duration_seconds", "route", "ns/r"); v != 3 {
		t.Errorf("duration samples = %v", v)
	}
	if v := observe.Value(reg, "portico_http_upstream_duration_seconds", "route", "ns/r"); v != 3 {
		t.Errorf("upstream duration samples = %v", v)
	}
	if v := observe.Value(reg, "portico_downstream_connections_active"); v < 1 {
		t.Errorf("active connections = %v with a keep-alive conn open", v)
	}
	if v := observe.Value(reg, "portico_config_info", "version", s.Version); v != 1 {
		t.Errorf("config info = %v", v)
	}
	if v := observe.Value(reg, "portico_config_reloads_total"); v != 1 {
		t.Errorf("reloads = %v", v)
	}
	cl.CloseIdleConnections()
	waitFor(t, func() bool { return observe.Value(reg, "portico_downstream_connections_active") == 0 })

	// Access log: a POST with a body.
	req, _ := http.NewRequest("POST", base(port)+"/api/log?q=1", strings.NewReader("hello"))
	req.Header.Set("User-Agent", "portico-test")
	req.Header.Set("X-Request-Id", "log-me")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"request_id":"log-me"`) })
	var m map[string]any
	if err := json.Unmarshal([]byte(findLine(e.logs.String(), "log-me")), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"request_id": "log-me", "gateway": "default/http", "route": "ns/r", "method": "POST",
		"host": "127.0.0.1:" + itoa(port), "path": "/api/log", "status": 200.0, "upstream": addrOf(a),
		"bytes_in": 5.0, "user_agent": "portico-test",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("log %s = %#v, want %#v", k, m[k], v)
		}
	}
	for _, k := range []string{"time", "duration_ms", "upstream_duration_ms", "bytes_out", "remote_addr"} {
		if _, ok := m[k]; !ok {
			t.Errorf("log lacks %s", k)
		}
	}
	if m["bytes_out"].(float64) <= 0 {
		t.Errorf("bytes_out %v", m["bytes_out"])
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
	// Renaming the route forgets the old series.
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("a", addrOf(a))}, prefixRoute("ns/renamed", "/api", "a")))
	if v := observe.Value(reg, "portico_http_requests_total", "route", "ns/r"); v != -1 {
		t.Errorf("series of removed route still exported: %v", v)
	}
}

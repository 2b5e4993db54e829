package upstream

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"portico.dev/portico/internal/ir"
)

// transitions records OnHealthChange calls.
type transitions struct {
	mu  sync.Mutex
	log []string
}

func (tr *transitions) hook(up, ep string, healthy bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := "down"
	if healthy {
		s = "up"
	}
	tr.log = append(tr.log, up+" "+ep+" "+s)
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.log...)
}

// buildDef builds def in a fresh registry closed at cleanup.
func buildDef(t *testing.T, opts Options, def ir.Upstream) (*Registry, *Upstream) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := NewRegistry(opts)
	m, err := r.Build([]ir.Upstream{def})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, m[def.Name]
}

func checkDef(name string, a *ir.ActiveCheck, addrs ...string) ir.Upstream {
	def := ir.Upstream{Name: name}
	for _, ad := range addrs {
		def.Endpoints = append(def.Endpoints, ir.Endpoint{Address: ad, Weight: 1})
	}
	def.HealthCheck = &ir.HealthCheck{Active: a}
	return def
}

// TestActiveHTTPThresholds drives an HTTP check by probe number: two
// failures stay under the unhealthy threshold of 3, a longer run flips the
// endpoint at exactly the third failure, and it returns after two successes.
func TestActiveHTTPThresholds(t *testing.T) {
	var probes atomic.Int32
	var flips []int32
	var mu sync.Mutex
	var badHost atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := probes.Add(1)
		if r.URL.Path != "/healthz" || r.Host != "hc.test" {
			badHost.Store(r.Host + r.URL.Path)
		}
		if (n >= 3 && n <= 4) || (n >= 8 && n <= 12) {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	var tr transitions
	opts := testOpts()
	opts.OnHealthChange = func(up, ep string, healthy bool) {
		mu.Lock()
		flips = append(flips, probes.Load())
		mu.Unlock()
		tr.hook(up, ep, healthy)
	}
	_, u := buildDef(t, opts, checkDef("web", &ir.ActiveCheck{Type: ir.CheckHTTP, Path: "/healthz", Host: "hc.test",
		IntervalMillis: 10, TimeoutMillis: 500, HealthyThreshold: 2, UnhealthyThreshold: 3}, addr))
	ep := u.Endpoints()[0]
	if !ep.Available() {
		t.Fatal("endpoint must start healthy")
	}
	waitFor(t, "16 probes", func() bool { return probes.Load() >= 16 })
	got := tr.list()
	want := []string{"web " + addr + " down", "web " + addr + " up"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("transitions = %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if flips[0] != 10 || flips[1] != 14 {
		t.Fatalf("flipped at probes %v, want [10 14]", flips)
	}
	if v := badHost.Load(); v != nil {
		t.Fatalf("probe sent to %v", v)
	}
	if h := u.Health(); !h.Endpoints[0].Healthy || h.Endpoints[0].LastCheck.IsZero() {
		t.Fatalf("health = %+v", h)
	}
}

func TestActiveHTTPExpectedStatuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer srv.Close()
	_, u := buildDef(t, testOpts(), checkDef("x", &ir.ActiveCheck{Type: ir.CheckHTTP, Path: "/",
		ExpectedStatuses: []int32{204}, IntervalMillis: 10, UnhealthyThreshold: 1}, srv.Listener.Addr().String()))
	waitFor(t, "unhealthy", func() bool { return !u.Endpoints()[0].Available() })
	if e := u.Health().Endpoints[0].LastCheckError; e != "status 200" {
		t.Fatalf("last error = %q", e)
	}
}

func TestActiveTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, u := buildDef(t, testOpts(), checkDef("tcp", &ir.ActiveCheck{Type: ir.CheckTCP,
		IntervalMillis: 10, TimeoutMillis: 200, HealthyThreshold: 1, UnhealthyThreshold: 2}, addr))
	ep := u.Endpoints()[0]
	waitFor(t, "a check", func() bool { return !u.Health().Endpoints[0].LastCheck.IsZero() })
	if !ep.Available() {
		t.Fatal("listening endpoint is unhealthy")
	}
	ln.Close()
	waitFor(t, "unhealthy after close", func() bool { return !ep.Available() })
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skip("cannot rebind", err)
	}
	defer ln2.Close()
	waitFor(t, "healthy after reopen", ep.Available)
}

func TestActiveGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	go gs.Serve(ln)
	defer gs.Stop()
	addr := ln.Addr().String()
	var tr transitions
	opts := testOpts()
	opts.OnHealthChange = tr.hook
	for _, proto := range []string{ir.UpstreamHTTP, ir.UpstreamH2C} {
		def := checkDef("g-"+proto, &ir.ActiveCheck{Type: ir.CheckGRPC, GRPCService: "svc",
			IntervalMillis: 10, TimeoutMillis: 500, HealthyThreshold: 1, UnhealthyThreshold: 1}, addr)
		def.Protocol = proto
		_, u := buildDef(t, opts, def)
		waitFor(t, "a check", func() bool { return !u.Health().Endpoints[0].LastCheck.IsZero() })
		if h := u.Health().Endpoints[0]; !h.Healthy || h.LastCheckError != "" {
			t.Fatalf("%s: serving endpoint: %+v", proto, h)
		}
	}
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	waitFor(t, "both down", func() bool { return len(tr.list()) == 2 })
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	waitFor(t, "both up", func() bool { return len(tr.list()) == 4 })

	// An unknown service is a gRPC NOT_FOUND status, reported as the error.
	_, u := buildDef(t, testOpts(), checkDef("g2", &ir.ActiveCheck{Type: ir.CheckGRPC, GRPCService: "nope",
		IntervalMillis: 10, UnhealthyThreshold: 1}, addr))
	waitFor(t, "unhealthy", func() bool { return !u.Endpoints()[0].Available() })
	if e := u.Health().Endpoints[0].LastCheckError; !strings.Contains(e, "status 5") {
		t.Fatalf("last error = %q", e)
	}
}

func TestGRPCHealthCodec(t *testing.T) {
	req := grpcHealthRequest("svc")
	want := []byte{0, 0, 0, 0, 5, 0x0a, 3, 's', 'v', 'c'}
	if string(req) != string(want) {
		t.Fatalf("request = %v", req)
	}
	// status=1 after an unknown length-delimited field 2.
	st, err := parseGRPCHealthResponse([]byte{0, 0, 0, 0, 5, 0x12, 1, 'x', 0x08, 1})
	if err != nil || st != 1 {
		t.Fatalf("status %d, %v", st, err)
	}
	if _, err := parseGRPCHealthResponse([]byte{0, 0, 0, 0, 9, 0x08}); err == nil {
		t.Fatal("truncated frame accepted")
	}
}

func TestJitterBounds(t *testing.T) {
	a := newActiveChecker(&Upstream{}, ir.ActiveCheck{Type: ir.CheckTCP, IntervalMillis: 100, JitterMillis: 20})
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		d := a.nextDelay()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 100*time.Millisecond || hi > 120*time.Millisecond {
		t.Fatalf("delays in [%v, %v], want within [100ms, 120ms]", lo, hi)
	}
	if hi-lo < 15*time.Millisecond {
		t.Fatalf("delays in [%v, %v]: jitter not applied", lo, hi)
	}
	if d := newActiveChecker(&Upstream{}, ir.ActiveCheck{Type: ir.CheckTCP}).nextDelay(); d != defaultCheckInterval {
		t.Fatalf("default interval %v", d)
	}
}

// TestHealthSurvivesBuild: an unchanged definition keeps its *Upstream and
// its (failing) health; a changed one starts over healthy, and the old
// one's checks stop when it is released.
func TestHealthSurvivesBuild(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	def := checkDef("s", &ir.ActiveCheck{Type: ir.CheckHTTP, Path: "/", IntervalMillis: 10, UnhealthyThreshold: 1},
		srv.Listener.Addr().String())
	r, u := buildDef(t, testOpts(), def)
	waitFor(t, "unhealthy", func() bool { return !u.Endpoints()[0].Available() })

	same := cloneDef(def)
	m, err := r.Build([]ir.Upstream{same})
	if err != nil {
		t.Fatal(err)
	}
	r.Release(m)
	if m["s"] != u || u.Endpoints()[0].Available() {
		t.Fatal("unchanged upstream was rebuilt or lost its health state")
	}
	if h := r.Health(); len(h) != 1 || h[0].Name != "s" || h[0].Endpoints[0].Healthy {
		t.Fatalf("registry health = %+v", h)
	}

	changed := cloneDef(def)
	changed.HealthCheck.Active.IntervalMillis = 500
	changed.HealthCheck.Active.UnhealthyThreshold = 2 // the first probe alone cannot flip it
	m2, err := r.Build([]ir.Upstream{changed})
	if err != nil {
		t.Fatal(err)
	}
	r.Release(m2)
	u2 := m2["s"]
	if u2 == u || !u2.Endpoints()[0].Available() {
		t.Fatal("changed upstream must be fresh and start healthy")
	}
	u.hs.active.wait() // the retired upstream's probes stopped
	if def.HealthCheck.Active.IntervalMillis != 10 {
		t.Fatal("Build modified its input")
	}
}

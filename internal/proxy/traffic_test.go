package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
)

func mirrorMetric(e *testEnv, up, outcome string) float64 {
	return observe.Value(e.metrics.Registry, "portico_mirror_requests_total", "upstream", up, "outcome", outcome)
}

// mirrorDone counts finished mirror copies for the duration of a test.
func mirrorDone(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	f := func() { n.Add(1) }
	testHookMirrorDone.Store(&f)
	t.Cleanup(func() { testHookMirrorDone.Store(nil) })
	return &n
}

func TestMirrorCopiesRequests(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	done := mirrorDone(t)
	main := echoBackend(t, "main")
	type seen struct{ host, body, path, method string }
	var mu sync.Mutex
	var got []seen
	shadow := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Host, string(b), r.URL.Path, r.Method})
		mu.Unlock()
		w.WriteHeader(201)
	})
	all := prefixRoute("all", "/all", "main")
	all.Mirror = &ir.Mirror{Upstream: "shadow", Percent: 100}
	half := prefixRoute("half", "/half", "main")
	half.Mirror = &ir.Mirror{Upstream: "shadow", Percent: 50}
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("main", addrOf(main)), upstreamFor("shadow", addrOf(shadow))}, all, half))
	cl := newClient()

	req, _ := http.NewRequest("POST", base(port)+"/all/x", strings.NewReader("mirrored body"))
	req.Host = "api.example:8080"
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var echo echoed
	json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if resp.StatusCode != 200 || echo.Body != "mirrored body" || echo.Host != "api.example:8080" {
		t.Fatalf("client: %d %+v", resp.StatusCode, echo)
	}
	waitFor(t, func() bool { return done.Load() == 1 })
	mu.Lock()
	if len(got) != 1 || got[0] != (seen{"api.example-shadow:8080", "mirrored body", "/all/x", "POST"}) {
		t.Fatalf("mirror saw %+v", got)
	}
	mu.Unlock()

	const n = 400
	for i := 0; i < n; i++ {
		get(t, cl, base(port)+"/half")
	}
	waitFor(t, func() bool { return done.Load() >= 1+n/4 && mirrorMetric(e, "shadow", "sent") == float64(done.Load()) })
	time.Sleep(50 * time.Millisecond)
	mirrored := done.Load() - 1
	t.Logf("50%% mirror: %d of %d requests copied", mirrored, n)
	if mirrored < n/2-60 || mirrored > n/2+60 { // ±6σ
		t.Fatalf("50%% mirror copied %d of %d", mirrored, n)
	}
}

func TestMirrorNeverAffectsClient(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	done := mirrorDone(t)
	main := echoBackend(t, "main")
	release := make(chan struct{})
	var slowHits atomic.Int64
	slow := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		io.ReadAll(r.Body)
		<-release
	})
	failing := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	})
	routes := []ir.Route{prefixRoute("slow", "/slow", "main"), prefixRoute("fail", "/fail", "main"), prefixRoute("dead", "/dead", "main")}
	routes[0].Mirror = &ir.Mirror{Upstream: "slow", Percent: 100}
	routes[1].Mirror = &ir.Mirror{Upstream: "failing", Percent: 100}
	routes[2].Mirror = &ir.Mirror{Upstream: "dead", Percent: 100}
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("main", addrOf(main)),
		upstreamFor("slow", addrOf(slow)), upstreamFor("failing", addrOf(failing)), upstreamFor("dead", deadAddr(t))}, routes...))
	cl := newClient()

	// A mirror that never answers: every client request still completes at once,
	// and copies beyond the in-flight bound are dropped.
	const n = maxMirrorInFlight + 36
	start := time.Now()
	for i := 0; i < n; i++ {
		if r := get(t, cl, base(port)+"/slow"); r.status != 200 || r.echo.Backend != "main" {
			t.Fatalf("request %d with a stuck mirror: %d", i, r.status)
		}
	}
	took := time.Since(start)
	waitFor(t, func() bool { return slowHits.Load() == maxMirrorInFlight })
	if d := mirrorMetric(e, "slow", "dropped_in_flight"); d != n-maxMirrorInFlight {
		t.Fatalf("dropped %v copies, want %d", d, n-maxMirrorInFlight)
	}
	t.Logf("%d requests with a stuck mirror took %v", n, took)
	if took > 3*time.Second {
		t.Fatalf("a stuck mirror slowed the client: %v for %d requests", took, n)
	}
	close(release)
	waitFor(t, func() bool { return done.Load() == maxMirrorInFlight })

	// Mirrors that reset or refuse: the client never notices.
	for _, p := range []string{"/fail", "/dead"} {
		for i := 0; i < 10; i++ {
			if r := get(t, cl, base(port)+p); r.status != 200 || r.echo.Backend != "main" {
				t.Fatalf("%s: %d", p, r.status)
			}
		}
	}
	waitFor(t, func() bool {
		return mirrorMetric(e, "failing", "failed") == 10 && mirrorMetric(e, "dead", "failed") == 10
	})

	// A body too large to buffer is not mirrored, and reaches the main upstream whole.
	big := bytes.Repeat([]byte("b"), maxBufferedBody+1)
	before := slowHits.Load()
	req, _ := http.NewRequest("POST", base(port)+"/slow", bytes.NewReader(big))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var echo echoed
	json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(echo.Body) != len(big) || mirrorMetric(e, "slow", "body_too_large") != 1 {
		t.Fatalf("large body: %d, %d bytes upstream, body_too_large %v", resp.StatusCode, len(echo.Body), mirrorMetric(e, "slow", "body_too_large"))
	}
	time.Sleep(50 * time.Millisecond)
	if slowHits.Load() != before {
		t.Fatal("a body over the limit was mirrored")
	}
}

func TestFaultInjection(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	b := countedBackend(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mk := func(name string, f ir.Fault) ir.Route {
		r := prefixRoute(name, "/"+name, "b")
		r.Fault = &f
		return r
	}
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("b", addrOf(b.Server))},
		mk("abort", ir.Fault{AbortStatus: 418, AbortPercent: 100}),
		mk("abort30", ir.Fault{AbortStatus: 503, AbortPercent: 30}),
		mk("delay", ir.Fault{DelayMillis: 150, DelayPercent: 100}),
		mk("delay50", ir.Fault{DelayMillis: 40, DelayPercent: 50}),
		mk("long", ir.Fault{DelayMillis: 5000, DelayPercent: 100})))
	cl := newClient()

	r := get(t, cl, base(port)+"/abort")
	if r.status != 418 || errorCode(t, r.body) != "fault_injected" || r.header.Get("X-Portico-Error") != "fault_injected" || b.hits.Load() != 0 {
		t.Fatalf("abort: %d %s, upstream hits %d", r.status, r.body, b.hits.Load())
	}
	const n = 500
	aborted := 0
	for i := 0; i < n; i++ {
		if r := get(t, cl, base(port)+"/abort30"); r.status == 503 {
			aborted++
		}
	}
	t.Logf("30%% abort: %d of %d", aborted, n)
	if aborted < 150-60 || aborted > 150+60 || b.hits.Load() != int64(n-aborted) {
		t.Fatalf("30%% abort: %d of %d aborted, upstream saw %d", aborted, n, b.hits.Load())
	}

	start := time.Now()
	if r := get(t, cl, base(port)+"/delay"); r.status != 200 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("delay: %d after %v", r.status, time.Since(start))
	}
	var wg sync.WaitGroup
	var delayed atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			for i := 0; i < 25; i++ {
				s := time.Now()
				if r := get(t, c, base(port)+"/delay50"); r.status != 200 {
					t.Errorf("delay50: %d", r.status)
				}
				if time.Since(s) >= 40*time.Millisecond {
					delayed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("50%% delay: %d of 200 delayed", delayed.Load())
	if d := delayed.Load(); d < 100-45 || d > 100+45 {
		t.Fatalf("50%% delay: %d of 200 delayed", d)
	}

	// The delay ends when the client leaves, and the upstream is never reached.
	hits := b.hits.Load()
	short := newClient()
	short.Timeout = 100 * time.Millisecond
	start = time.Now()
	if _, err := short.Get(base(port) + "/long"); err == nil {
		t.Fatal("expected a client timeout")
	}
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"status":499`) })
	if time.Since(start) > 2*time.Second || b.hits.Load() != hits {
		t.Fatalf("cancelled delay: took %v, upstream hits %d→%d", time.Since(start), hits, b.hits.Load())
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	slowHead := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	stallBody := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	trickle := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 8; i++ {
			io.WriteString(w, "tick\n")
			w.(http.Flusher).Flush()
			time.Sleep(40 * time.Millisecond)
		}
	})
	echo := echoBackend(t, "echo")
	mk := func(name string) ir.Route {
		r := prefixRoute(name, "/"+name, name)
		r.IdleTimeoutMillis = 120
		return r
	}
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("head", addrOf(slowHead)), upstreamFor("body", addrOf(stallBody)),
		upstreamFor("trickle", addrOf(trickle)), upstreamFor("echo", addrOf(echo))},
		mk("head"), mk("body"), mk("trickle"), mk("echo")))
	cl := newClient()

	start := time.Now()
	r := get(t, cl, base(port)+"/head")
	if r.status != 504 || errorCode(t, r.body) != "idle_timeout" || time.Since(start) > time.Second {
		t.Fatalf("silent upstream: %d %s after %v", r.status, r.body, time.Since(start))
	}

	// A body that stalls after its head: the response is aborted (the head may
	// still sit in the server's buffer, so the client sees a closed connection
	// or a truncated body).
	start = time.Now()
	resp, err := cl.Get(base(port) + "/body")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("stalled body: err %v after %v (want an aborted response)", err, time.Since(start))
	}

	// Bytes every 40 ms keep a 120 ms idle timeout from firing over 320 ms.
	if r := get(t, cl, base(port)+"/trickle"); r.status != 200 || strings.Count(string(r.body), "tick") != 8 {
		t.Fatalf("trickle: %d %q", r.status, r.body)
	}

	// A client that stalls its request body: 504 once the idle timeout passes.
	start = time.Now()
	line := rawRequest(t, port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab", 2*time.Second)
	if !strings.Contains(line, " 504 ") || time.Since(start) > time.Second {
		t.Fatalf("stalled request body: %q after %v", line, time.Since(start))
	}
}

package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
)

// counted is a test backend that counts requests; h sees the 1-based count.
type counted struct {
	*httptest.Server
	hits atomic.Int64
}

func countedBackend(t *testing.T, h func(n int64, w http.ResponseWriter, r *http.Request)) *counted {
	t.Helper()
	c := &counted{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(c.hits.Add(1), w, r)
	}))
	t.Cleanup(c.Close)
	return c
}

// failFirst answers status to the first request and an echo of the body after.
func failFirst(status int) func(int64, http.ResponseWriter, *http.Request) {
	return func(n int64, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if n == 1 {
			w.WriteHeader(status)
			io.WriteString(w, "failed try")
			return
		}
		w.Header().Set("X-Body", string(body))
		io.WriteString(w, "ok")
	}
}

// resetFirst drops the connection without answering on the first request.
func resetFirst(n int64, w http.ResponseWriter, r *http.Request) {
	if n == 1 {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
		return
	}
	io.WriteString(w, "ok")
}

// deadAddr is a loopback address nobody listens on (connection refused).
func deadAddr(t *testing.T) string { return "127.0.0.1:" + itoa(freePort(t)) }

// generous is a retry budget that never gets in the way of a functional test.
var generous = ir.RetryBudget{Percent: 100, MinRetriesPerSecond: 1000, IntervalMillis: 1000}

func retryUpstream(name string, budget ir.RetryBudget, addrs ...string) ir.Upstream {
	u := upstreamFor(name, addrs...)
	u.RetryBudget = budget
	return u
}

func retryRoute(up string, rt *ir.Retry) ir.Route {
	r := prefixRoute("r-"+up, "/"+up, up)
	r.Retry = rt
	return r
}

func send(t *testing.T, cl *http.Client, method, url string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestRetryConditions(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	type tc struct {
		name  string
		h     func(int64, http.ResponseWriter, *http.Request)
		retry ir.Retry
		want  int // client status
		hits  int64
	}
	on := func(c ...string) ir.Retry {
		return ir.Retry{Attempts: 2, On: c, BackoffBaseMillis: 1, BackoffMaxMillis: 2}
	}
	codes := on("retriable-status-codes")
	codes.StatusCodes = []int32{418, 429}
	cases := []tc{
		{"503 gateway-error", failFirst(503), on("gateway-error"), 200, 2},
		{"502 gateway-error", failFirst(502), on("gateway-error"), 200, 2},
		{"504 gateway-error", failFirst(504), on("gateway-error"), 200, 2},
		{"500 not gateway-error", failFirst(500), on("gateway-error"), 500, 1},
		{"500 5xx", failFirst(500), on("5xx"), 200, 2},
		{"503 5xx", failFirst(503), on("5xx"), 200, 2},
		{"503 connect-failure only", failFirst(503), on("connect-failure"), 503, 1},
		{"503 reset only", failFirst(503), on("reset"), 503, 1},
		{"418 listed", failFirst(418), codes, 200, 2},
		{"404 not listed", failFirst(404), codes, 404, 1},
		{"reset reset", resetFirst, on("reset"), 200, 2},
		{"reset gateway-error", resetFirst, on("gateway-error"), 200, 2},
		{"reset 5xx", resetFirst, on("5xx"), 200, 2},
		{"reset connect-failure only", resetFirst, on("connect-failure"), 502, 1},
		{"no attempts", failFirst(503), ir.Retry{Attempts: 0, On: []string{"5xx"}, PerTryTimeoutMillis: 1000}, 503, 1},
	}
	var ups []ir.Upstream
	var routes []ir.Route
	backends := map[string]*counted{}
	for i, c := range cases {
		name := "u" + itoa(i)
		b := countedBackend(t, c.h)
		backends[name] = b
		ups = append(ups, retryUpstream(name, generous, addrOf(b.Server)))
		rt := c.retry
		routes = append(routes, retryRoute(name, &rt))
	}
	e.apply(t, simpleSnapshot(port, ups, routes...))
	cl := newClient()
	for i, c := range cases {
		name := "u" + itoa(i)
		status, _, _ := send(t, cl, "GET", base(port)+"/"+name, nil)
		if status != c.want || backends[name].hits.Load() != c.hits {
			t.Errorf("%s: status %d hits %d, want %d and %d", c.name, status, backends[name].hits.Load(), c.want, c.hits)
		}
	}
}

func TestRetryConnectFailureToOtherEndpoint(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	good := countedBackend(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	dead := deadAddr(t)
	ups := []ir.Upstream{
		retryUpstream("cf", generous, dead, addrOf(good.Server)),
		retryUpstream("rs", generous, dead, addrOf(good.Server)),
	}
	e.apply(t, simpleSnapshot(port, ups,
		retryRoute("cf", &ir.Retry{Attempts: 1, On: []string{"connect-failure"}, BackoffBaseMillis: 1, BackoffMaxMillis: 1}),
		retryRoute("rs", &ir.Retry{Attempts: 1, On: []string{"reset"}, BackoffBaseMillis: 1, BackoffMaxMillis: 1})))

	var mu sync.Mutex
	var tries [][]string // Avoid lists seen by each try
	testHookTry = func(avoid []string) {
		mu.Lock()
		tries = append(tries, append([]string(nil), avoid...))
		mu.Unlock()
	}
	defer func() { testHookTry = nil }()
	cl := newClient()
	for i := 0; i < 10; i++ {
		if status, _, _ := send(t, cl, "GET", base(port)+"/cf", nil); status != 200 {
			t.Fatalf("request %d through a dead endpoint: status %d", i, status)
		}
	}
	if good.hits.Load() != 10 {
		t.Fatalf("good endpoint served %d, want 10", good.hits.Load())
	}
	// Every retry asked the balancer to avoid the dead endpoint it had just tried.
	retries := 0
	for _, a := range tries {
		if len(a) > 0 {
			retries++
			if len(a) != 1 || a[0] != dead {
				t.Fatalf("retry avoided %v, want [%s]", a, dead)
			}
		}
	}
	if retries < 5 {
		t.Fatalf("%d retries for 10 requests over 2 round-robin endpoints, want at least 5", retries)
	}
	// "reset" does not cover connect failures: half the requests fail.
	failed := 0
	for i := 0; i < 10; i++ {
		if status, _, _ := send(t, cl, "GET", base(port)+"/rs", nil); status == 502 {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d of 10 failed with reset-only retries, want 5", failed)
	}
}

func TestRetryBackoffBounds(t *testing.T) {
	p := compileRetry(&ir.Retry{Attempts: 5, On: []string{"5xx"}, BackoffBaseMillis: 10, BackoffMaxMillis: 45})
	for n := 0; n < 6; n++ {
		limit := min(10*time.Millisecond<<n, 45*time.Millisecond)
		var hi time.Duration
		for i := 0; i < 2000; i++ {
			d := p.backoff(n)
			if d < 0 || d > limit {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, d, limit)
			}
			hi = max(hi, d)
		}
		if hi < limit*3/4 { // full jitter spreads over the whole range
			t.Fatalf("backoff(%d): largest of 2000 draws %v, want close to %v", n, hi, limit)
		}
	}
	if d := compileRetry(&ir.Retry{Attempts: 1}).max; d != defaultBackoffMax {
		t.Fatalf("default max %v", d)
	}

	// Through the proxy: every retry waits a jittered backoff within its bound.
	e := newEnv(t)
	port := freePort(t)
	b := countedBackend(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	e.apply(t, simpleSnapshot(port, []ir.Upstream{retryUpstream("b", generous, addrOf(b.Server))},
		retryRoute("b", &ir.Retry{Attempts: 3, On: []string{"gateway-error"}, BackoffBaseMillis: 20, BackoffMaxMillis: 50})))
	var mu sync.Mutex
	var waits []time.Duration
	testHookBackoff = func(n int, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if n != len(waits) {
			t.Errorf("backoff for retry %d after %d", n, len(waits))
		}
		waits = append(waits, d)
	}
	defer func() { testHookBackoff = nil }()
	start := time.Now()
	status, _, _ := send(t, newClient(), "GET", base(port)+"/b", nil)
	took := time.Since(start)
	var sum time.Duration
	for n, d := range waits {
		if limit := min(20*time.Millisecond<<n, 50*time.Millisecond); d > limit {
			t.Errorf("retry %d waited %v, bound %v", n, d, limit)
		}
		sum += d
	}
	if status != 503 || b.hits.Load() != 4 || len(waits) != 3 || took < sum {
		t.Fatalf("status %d, hits %d, waits %v (sum %v), took %v", status, b.hits.Load(), waits, sum, took)
	}
}

func TestRetryPerTryTimeout(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	slowFirst := countedBackend(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	})
	alwaysSlow := countedBackend(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	ups := []ir.Upstream{
		retryUpstream("pt", generous, addrOf(slowFirst.Server)),
		retryUpstream("whole", generous, addrOf(alwaysSlow.Server)),
	}
	pt := retryRoute("pt", &ir.Retry{Attempts: 2, On: []string{"gateway-error"}, PerTryTimeoutMillis: 100, BackoffBaseMillis: 1, BackoffMaxMillis: 1})
	pt.TimeoutMillis = 3000
	whole := retryRoute("whole", &ir.Retry{Attempts: 3, On: []string{"gateway-error", "reset", "5xx"}, BackoffBaseMillis: 1, BackoffMaxMillis: 1})
	whole.TimeoutMillis = 150
	e.apply(t, simpleSnapshot(port, ups, pt, whole))
	cl := newClient()

	start := time.Now()
	status, _, body := send(t, cl, "GET", base(port)+"/pt", nil)
	if took := time.Since(start); status != 200 || body != "ok" || slowFirst.hits.Load() != 2 || took > time.Second {
		t.Fatalf("per-try timeout then success: status %d body %q hits %d in %v", status, body, slowFirst.hits.Load(), took)
	}
	// The whole-request timeout is final: 504 and no retry.
	status, _, body = send(t, cl, "GET", base(port)+"/whole", nil)
	if status != 504 || errorCode(t, []byte(body)) != "upstream_timeout" || alwaysSlow.hits.Load() != 1 {
		t.Fatalf("route timeout: status %d body %q hits %d", status, body, alwaysSlow.hits.Load())
	}
}

func TestRetryNonIdempotentAndBodies(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	mk := func() *counted { return countedBackend(t, failFirst(503)) }
	post, postOK, put, chunked, large := mk(), mk(), mk(), mk(), mk()
	rtry := func(nonIdem bool) *ir.Retry {
		return &ir.Retry{Attempts: 1, On: []string{"gateway-error"}, BackoffBaseMillis: 1, BackoffMaxMillis: 1, NonIdempotent: nonIdem}
	}
	e.apply(t, simpleSnapshot(port, []ir.Upstream{
		retryUpstream("post", generous, addrOf(post.Server)),
		retryUpstream("postok", generous, addrOf(postOK.Server)),
		retryUpstream("put", generous, addrOf(put.Server)),
		retryUpstream("chunked", generous, addrOf(chunked.Server)),
		retryUpstream("large", generous, addrOf(large.Server)),
	}, retryRoute("post", rtry(false)), retryRoute("postok", rtry(true)), retryRoute("put", rtry(false)),
		retryRoute("chunked", rtry(false)), retryRoute("large", rtry(true))))
	cl := newClient()

	if status, _, _ := send(t, cl, "POST", base(port)+"/post", strings.NewReader("payload")); status != 503 || post.hits.Load() != 1 {
		t.Fatalf("POST retried by default: status %d hits %d", status, post.hits.Load())
	}
	status, h, _ := send(t, cl, "POST", base(port)+"/postok", strings.NewReader("payload"))
	if status != 200 || postOK.hits.Load() != 2 || h.Get("X-Body") != "payload" {
		t.Fatalf("POST with nonIdempotent: status %d hits %d replayed body %q", status, postOK.hits.Load(), h.Get("X-Body"))
	}
	status, h, _ = send(t, cl, "PUT", base(port)+"/put", strings.NewReader("put-body"))
	if status != 200 || put.hits.Load() != 2 || h.Get("X-Body") != "put-body" {
		t.Fatalf("PUT: status %d hits %d body %q", status, put.hits.Load(), h.Get("X-Body"))
	}
	// Unknown length (chunked): a stream, never waited for, so not replayable.
	status, _, _ = send(t, cl, "PUT", base(port)+"/chunked", io.MultiReader(strings.NewReader("chu"), strings.NewReader("nked")))
	if status != 503 || chunked.hits.Load() != 1 {
		t.Fatalf("chunked PUT: status %d hits %d, want the failure, not retried", status, chunked.hits.Load())
	}
	// Larger than the replay buffer: sent once, whole, never retried.
	big := bytes.Repeat([]byte("x"), maxBufferedBody+10)
	var gotLen atomic.Int64
	large.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotLen.Store(int64(len(b)))
		large.hits.Add(1)
		w.WriteHeader(503)
	})
	for _, body := range []io.Reader{bytes.NewReader(big), io.MultiReader(bytes.NewReader(big[:100]), bytes.NewReader(big[100:]))} {
		large.hits.Store(0)
		if status, _, _ := send(t, cl, "PUT", base(port)+"/large", body); status != 503 || large.hits.Load() != 1 || gotLen.Load() != int64(len(big)) {
			t.Fatalf("large body: status %d hits %d, upstream got %d of %d bytes", status, large.hits.Load(), gotLen.Load(), len(big))
		}
	}
}

// TestRetryBudgetBoundsAmplification is issue 3's retry-storm requirement: with
// every endpoint failing, the requests reaching the upstream stay ≤ 1.2× the
// client's requests under the default budget (20%, 3/s, 10 s).
func TestRetryBudgetBoundsAmplification(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	var hits atomic.Int64
	fail := func(w http.ResponseWriter, _ *http.Request) { hits.Add(1); w.WriteHeader(503) }
	var addrs []string
	for i := 0; i < 3; i++ {
		addrs = append(addrs, addrOf(httptestServer(t, fail)))
	}
	up := retryUpstream("storm", ir.RetryBudget{Percent: 20, MinRetriesPerSecond: 3, IntervalMillis: 10000}, addrs...)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{up},
		retryRoute("storm", &ir.Retry{Attempts: 3, On: []string{"gateway-error", "connect-failure", "reset"}, BackoffBaseMillis: 1, BackoffMaxMillis: 2})))

	const workers, perWorker = 8, 75
	var wg sync.WaitGroup
	var bad atomic.Int64
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newClient()
			for i := 0; i < perWorker; i++ {
				resp, err := cl.Get(base(port) + "/storm")
				if err != nil {
					bad.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 503 {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	client := int64(workers * perWorker)
	ratio := float64(hits.Load()) / float64(client)
	t.Logf("all endpoints failing: %d client requests, %d reached the upstream (%.3f×) in %v; without a budget: up to 4×",
		client, hits.Load(), ratio, time.Since(start).Round(time.Millisecond))
	if bad.Load() != 0 {
		t.Fatalf("%d requests did not get the upstream's 503", bad.Load())
	}
	if ratio > 1.2 {
		t.Fatalf("amplification %.3f× > 1.2×", ratio)
	}
	sent := retriesMetric(e, "storm", "sent")
	denied := retriesMetric(e, "storm", "budget_exhausted")
	if int64(sent) != hits.Load()-client || denied == 0 {
		t.Fatalf("metrics: %v retries sent, %v budget_exhausted (hits %d)", sent, denied, hits.Load())
	}
}

func TestRetryBudgetAllowsLowRates(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	// Every request fails once (odd hits) and then succeeds: one retry per request,
	// far above 20% of requests but within the minimum rate at this pace.
	b := countedBackend(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		if n%2 == 1 {
			w.WriteHeader(503)
		}
	})
	up := retryUpstream("low", ir.RetryBudget{}, addrOf(b.Server)) // zero: the default budget
	e.apply(t, simpleSnapshot(port, []ir.Upstream{up},
		retryRoute("low", &ir.Retry{Attempts: 2, On: []string{"gateway-error"}, BackoffBaseMillis: 1, BackoffMaxMillis: 1})))
	cl := newClient()
	for i := 0; i < 20; i++ {
		if status, _, _ := send(t, cl, "GET", base(port)+"/low", nil); status != 200 {
			t.Fatalf("request %d: %d", i, status)
		}
	}
	if got := retriesMetric(e, "low", "sent"); got != 20 {
		t.Fatalf("retries sent %v, want 20", got)
	}
}

func TestRetryBudgetWindow(t *testing.T) {
	b := newRetryBudget(ir.RetryBudget{Percent: 50, MinRetriesPerSecond: 1, IntervalMillis: 1000})
	now := int64(time.Hour)
	for i := 0; i < 10; i++ {
		b.request(now)
	}
	allowed := 0
	for i := 0; i < 20; i++ {
		if b.allow(now) {
			allowed++
		}
	}
	if allowed != 4 { // below 50% of 10 (the minimum, 1/s × 1 s, is smaller)
		t.Fatalf("allowed %d retries for 10 requests at 50%%, want 4", allowed)
	}
	// Once the interval has passed, the minimum allowance is back.
	later := now + int64(1100*time.Millisecond)
	if !b.allow(later) || b.allow(later) {
		t.Fatal("after the interval: want exactly the minimum (1) allowed")
	}
}

func TestRetryBudgetSurvivesReload(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	a := echoBackend(t, "a")
	ups := []ir.Upstream{retryUpstream("a", generous, addrOf(a)), upstreamFor("other", addrOf(a))}
	rt := &ir.Retry{Attempts: 1, On: []string{"5xx"}}
	e.apply(t, simpleSnapshot(port, ups, retryRoute("a", rt)))
	before := stateOf(e.rt.upstreams["a"])
	r2 := retryRoute("a", rt)
	r2.TimeoutMillis = 5000 // a route change only
	e.apply(t, simpleSnapshot(port, ups, r2))
	if stateOf(e.rt.upstreams["a"]) != before {
		t.Fatal("budget state lost across a reload that kept the upstream")
	}
	ups[0].RetryBudget.Percent = 30
	e.apply(t, simpleSnapshot(port, ups, r2))
	if s := stateOf(e.rt.upstreams["a"]); s == before || s.budget.percent != 30 {
		t.Fatal("a changed budget must start afresh")
	}
}

func TestUpstreamOverloaded(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	b := countedBackend(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		started <- struct{}{}
		<-release
	})
	up := retryUpstream("cb", generous, addrOf(b.Server))
	up.CircuitBreaker = &ir.CircuitBreaker{MaxRequests: 1}
	e.apply(t, simpleSnapshot(port, []ir.Upstream{up},
		retryRoute("cb", &ir.Retry{Attempts: 3, On: []string{"5xx", "gateway-error", "connect-failure", "reset"}, BackoffBaseMillis: 1, BackoffMaxMillis: 1})))
	cl := newClient()
	done := make(chan int)
	go func() {
		s, _, _ := send(t, cl, "GET", base(port)+"/cb", nil)
		done <- s
	}()
	<-started
	status, h, body := send(t, cl, "GET", base(port)+"/cb", nil)
	close(release)
	if s := <-done; s != 200 {
		t.Fatalf("first request: %d", s)
	}
	if status != 503 || errorCode(t, []byte(body)) != "upstream_overloaded" || h.Get("X-Portico-Overloaded") != "max-requests" {
		t.Fatalf("over the limit: status %d, %s, X-Portico-Overloaded %q", status, body, h.Get("X-Portico-Overloaded"))
	}
	if b.hits.Load() != 1 {
		t.Fatalf("overload was retried: %d hits", b.hits.Load())
	}
}

// rawRequest writes raw bytes to the proxy and returns the status line it reads.
func rawRequest(t *testing.T, port int, req string, wait time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, req)
	c.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, 512)
	n, _ := io.ReadAtLeast(c, b, 12)
	line, _, _ := strings.Cut(string(b[:n]), "\r\n")
	return line
}

func retriesMetric(e *testEnv, up, outcome string) float64 {
	return observe.Value(e.metrics.Registry, "portico_retries_total", "upstream", up, "outcome", outcome)
}

// TestRetryRefusedSpendsNoBudget: a refused connection reached no application,
// so retrying it is allowed even with an exhausted budget; a 503 is not.
func TestRetryRefusedSpendsNoBudget(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	good := countedBackend(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	flaky := countedBackend(t, failFirst(503))
	none := ir.RetryBudget{Percent: 0, MinRetriesPerSecond: 0, IntervalMillis: 10000} // no retries at all
	e.apply(t, simpleSnapshot(port, []ir.Upstream{
		retryUpstream("ref", none, deadAddr(t), addrOf(good.Server)),
		retryUpstream("flaky", none, addrOf(flaky.Server)),
	}, retryRoute("ref", &ir.Retry{Attempts: 1, On: []string{"connect-failure"}, BackoffBaseMillis: 1, BackoffMaxMillis: 1}),
		retryRoute("flaky", &ir.Retry{Attempts: 1, On: []string{"gateway-error"}, BackoffBaseMillis: 1, BackoffMaxMillis: 1})))
	cl := newClient()
	for i := 0; i < 10; i++ {
		if status, _, _ := send(t, cl, "GET", base(port)+"/ref", nil); status != 200 {
			t.Fatalf("request %d past a refused endpoint: %d", i, status)
		}
	}
	if status, _, _ := send(t, cl, "GET", base(port)+"/flaky", nil); status != 503 || flaky.hits.Load() != 1 {
		t.Fatalf("503 with an empty budget: status %d hits %d, want no retry", status, flaky.hits.Load())
	}
	if d := retriesMetric(e, "flaky", "budget_exhausted"); d != 1 {
		t.Fatalf("budget_exhausted = %v", d)
	}
}

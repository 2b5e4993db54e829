package upstream

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// delayServer answers every request with 200 after delay.
func delayServer(t testing.TB, delay time.Duration) string {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, _, _, ok := readReq(br); !ok {
				return
			}
			time.Sleep(delay)
			if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
				return
			}
		}
	})
	return srv.addr()
}

// build returns the live upstream for def from a fresh registry.
func build(t testing.TB, def ir.Upstream, opts Options) (*Registry, *Upstream) {
	t.Helper()
	if def.Name == "" {
		def.Name = "u"
	}
	r := NewRegistry(opts)
	m, err := r.Build([]ir.Upstream{def})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, m[def.Name]
}

// setDown makes the addresses unavailable to u's balancer (test hook).
func setDown(u *Upstream, addrs ...string) {
	down := map[string]bool{}
	for _, a := range addrs {
		down[a] = true
	}
	hook := func(e *Endpoint) bool { return !down[e.Address] }
	u.availHook.Store(&hook)
}

// do runs one request through u and returns the endpoint and response.
func do(t testing.TB, u *Upstream, req *http.Request, try *Try) (string, *http.Response) {
	t.Helper()
	resp, addr, err := u.RoundTripTry(req, try)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return addr, resp
}

func eps(addrs ...string) []ir.Endpoint {
	out := make([]ir.Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = ir.Endpoint{Address: a, Weight: 1}
	}
	return out
}

// TestAlgorithmsOverLoopback sends real requests through every algorithm.
func TestAlgorithmsOverLoopback(t *testing.T) {
	a, b, c := delayServer(t, 0), delayServer(t, 0), delayServer(t, 0)
	for _, alg := range allAlgorithms {
		t.Run(alg, func(t *testing.T) {
			def := ir.Upstream{Algorithm: alg, Endpoints: eps(a, b, c)}
			def.Endpoints[2].Weight = 2
			_, u := build(t, def, testOpts())
			count := map[string]int{}
			const n = 400
			for i := range n {
				req := newReq(t, "GET", "/")
				// 200 distinct client addresses: with only a few, consistent hashing
				// can leave an endpoint without keys by chance ((3/4)^10 ≈ 6% each).
				req.RemoteAddr = fmt.Sprintf("10.0.%d.%d:1", i%200/100, i%100)
				addr, _ := do(t, u, req, nil)
				count[addr]++
			}
			if len(count) != 3 {
				t.Fatalf("not every endpoint served: %v", count)
			}
			if alg == AlgRoundRobin && (count[c] != 200 || count[a] != 100) {
				t.Fatalf("round-robin shares %v", count)
			}
			for _, e := range u.Endpoints() {
				if e.InFlight() != 0 {
					t.Fatalf("in-flight count leaked: %d", e.InFlight())
				}
			}
		})
	}
}

// TestEWMAPrefersFastEndpoint: one endpoint answers in 30 ms, two at once.
func TestEWMAPrefersFastEndpoint(t *testing.T) {
	slow, f1, f2 := delayServer(t, 30*time.Millisecond), delayServer(t, 0), delayServer(t, 0)
	_, u := build(t, ir.Upstream{Algorithm: AlgEWMA, Endpoints: eps(slow, f1, f2)}, testOpts())
	count := map[string]int{}
	for range 150 {
		addr, _ := do(t, u, newReq(t, "GET", "/"), nil)
		count[addr]++
	}
	if count[slow] > 5 {
		t.Fatalf("slow endpoint got %d of 150: %v", count[slow], count)
	}
}

// TestLeastRequestUnderLoad: a slow endpoint accumulates in-flight requests
// and least-request sends the rest elsewhere.
func TestLeastRequestUnderLoad(t *testing.T) {
	slow, fast := delayServer(t, 200*time.Millisecond), delayServer(t, 0)
	_, u := build(t, ir.Upstream{Algorithm: AlgLeastRequest, Endpoints: eps(slow, fast)}, testOpts())
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				addr, _ := do(t, u, newReq(t, "GET", "/"), nil)
				mu.Lock()
				count[addr]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if count[slow] > 16 {
		t.Fatalf("slow endpoint got %d of 80: %v", count[slow], count)
	}
}

// TestRetryAvoidsTriedEndpoint runs the avoid list through RoundTripTry.
func TestRetryAvoidsTriedEndpoint(t *testing.T) {
	a, b := delayServer(t, 0), delayServer(t, 0)
	_, u := build(t, ir.Upstream{Algorithm: AlgRandom, Endpoints: eps(a, b)}, testOpts())
	for range 50 {
		first, _ := do(t, u, newReq(t, "GET", "/"), nil)
		try := &Try{PickInfo: PickInfo{Avoid: []string{first}}, Retry: true}
		if second, _ := do(t, u, newReq(t, "GET", "/"), try); second == first {
			t.Fatal("retry went to the endpoint it should avoid")
		}
	}
	// Unavailable skipped, then panic mode when nothing is available.
	setDown(u, a)
	for range 20 {
		if addr, _ := do(t, u, newReq(t, "GET", "/"), nil); addr != b {
			t.Fatal("unavailable endpoint used")
		}
	}
	setDown(u, a, b)
	count := map[string]int{}
	for range 100 {
		addr, _ := do(t, u, newReq(t, "GET", "/"), nil)
		count[addr]++
	}
	if len(count) != 2 {
		t.Fatalf("panic mode should use every endpoint: %v", count)
	}
}

func TestSlowStartRamp(t *testing.T) {
	a, b, c := delayServer(t, 0), delayServer(t, 0), delayServer(t, 0)
	const window = 600
	def := ir.Upstream{Name: "u", Endpoints: eps(a, b), UpstreamTraffic: ir.UpstreamTraffic{SlowStartMillis: window}}
	r, _ := build(t, def, testOpts())
	// c joins an upstream that already served: it ramps.
	def.Endpoints = eps(a, b, c)
	m, err := r.Build([]ir.Upstream{def})
	if err != nil {
		t.Fatal(err)
	}
	u := m["u"]
	start := time.Now()
	count := countPicks(u, &PickInfo{}, 3000)
	if el := time.Since(start); el < window*time.Millisecond/4 {
		if s := float64(count[c]) / 3000; s > 0.15 {
			t.Fatalf("new endpoint got %.2f at the start of its ramp", s)
		}
	}
	// Midway the factor is about half.
	e := u.Endpoints()[2]
	now := nanotime()
	e.ramp.from.Store(now - window*1e6/2)
	if f := u.lb.Load().rampFactor(e, now); f < 0.5 || f > 0.6 {
		t.Fatalf("mid-ramp factor %.2f", f)
	}
	time.Sleep(window * time.Millisecond)
	count = countPicks(u, &PickInfo{}, 3000)
	within(t, "after the ramp", count[c], 3000, 1.0/3, 0.02)
	// An endpoint that becomes available again ramps too; a real request works.
	setDown(u, c)
	countPicks(u, &PickInfo{}, 30)
	setDown(u)
	count = countPicks(u, &PickInfo{}, 3000)
	if s := float64(count[c]) / 3000; s > 0.2 {
		t.Fatalf("recovered endpoint got %.2f right away", s)
	}
	do(t, u, newReq(t, "GET", "/"), nil)
}

func TestAffinityCookie(t *testing.T) {
	a, b, c := delayServer(t, 0), delayServer(t, 0), delayServer(t, 0)
	def := ir.Upstream{Name: "u", Algorithm: AlgRoundRobin, Endpoints: eps(a, b, c),
		UpstreamTraffic: ir.UpstreamTraffic{Affinity: &ir.Affinity{Cookie: "pin", TTLMillis: 3600_000}}}
	r, u := build(t, def, testOpts())
	addr, resp := do(t, u, newReq(t, "GET", "/"), nil)
	sc := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(sc, "pin=") || !strings.HasSuffix(sc, "; Path=/; HttpOnly; Max-Age=3600") {
		t.Fatalf("Set-Cookie %q", sc)
	}
	val, _, _ := strings.Cut(strings.TrimPrefix(sc, "pin="), ";")
	if strings.Contains(val, "127.0.0.1") || len(val) != 16 {
		t.Fatalf("cookie value is not opaque: %q", val)
	}
	for range 20 {
		req := newReq(t, "GET", "/")
		req.Header.Set("Cookie", "other=1; pin="+val)
		got, resp := do(t, u, req, nil)
		if got != addr {
			t.Fatalf("pinned to %s, went to %s", addr, got)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Fatal("cookie set again although it was valid")
		}
	}
	// The endpoint leaves: the client is re-balanced and gets a new cookie.
	var rest []string
	for _, x := range []string{a, b, c} {
		if x != addr {
			rest = append(rest, x)
		}
	}
	def.Endpoints = eps(rest...)
	m, err := r.Build([]ir.Upstream{def})
	if err != nil {
		t.Fatal(err)
	}
	req := newReq(t, "GET", "/")
	req.Header.Set("Cookie", "pin="+val)
	got, resp := do(t, m["u"], req, nil)
	if got == addr || !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "pin=") {
		t.Fatalf("stale cookie: went to %s, Set-Cookie %q", got, resp.Header.Get("Set-Cookie"))
	}
	// Unavailable pinned endpoint: re-pick as well.
	setDown(m["u"], got)
	if again, _ := do(t, m["u"], req, nil); again == got {
		t.Fatal("pinned to an unavailable endpoint")
	}
}

func TestLocality(t *testing.T) {
	var addrs []string
	for range 5 {
		addrs = append(addrs, delayServer(t, 0))
	}
	def := ir.Upstream{Algorithm: AlgRoundRobin, Endpoints: eps(addrs...),
		UpstreamTraffic: ir.UpstreamTraffic{Locality: &ir.Locality{Zone: "z1"}}}
	for i := range def.Endpoints {
		zone := "z2"
		if i < 3 {
			zone = "z1"
		}
		def.Endpoints[i].Labels = map[string]string{"zone": zone}
	}
	_, u := build(t, def, testOpts())
	served := func() map[string]int {
		count := map[string]int{}
		for range 60 {
			addr, _ := do(t, u, newReq(t, "GET", "/"), nil)
			count[addr]++
		}
		return count
	}
	if c := served(); len(c) != 3 || c[addrs[3]]+c[addrs[4]] != 0 {
		t.Fatalf("traffic left the zone: %v", c)
	}
	// 2 of 3 local available = 66% < 70%: spill to every available endpoint.
	setDown(u, addrs[0])
	if c := served(); len(c) != 4 || c[addrs[0]] != 0 {
		t.Fatalf("no spill: %v", c)
	}
	// With a 60% threshold the zone holds.
	def.Locality = &ir.Locality{Zone: "z1", MinHealthyPercent: 60}
	_, u = build(t, def, testOpts())
	setDown(u, addrs[0])
	if c := served(); len(c) != 2 || c[addrs[3]]+c[addrs[4]] != 0 {
		t.Fatalf("spilled above the threshold: %v", c)
	}
	// Retries avoiding every local endpoint leave the zone.
	try := &Try{PickInfo: PickInfo{Avoid: []string{addrs[1], addrs[2]}}}
	if addr, _ := do(t, u, newReq(t, "GET", "/"), try); addr != addrs[3] && addr != addrs[4] {
		t.Fatalf("retry stayed on %s", addr)
	}
}

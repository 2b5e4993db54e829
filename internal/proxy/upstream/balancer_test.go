package upstream

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"portico.dev/portico/internal/ir"
)

func testEndpoints(weights ...int32) []*Endpoint {
	eps := make([]*Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = &Endpoint{Address: string(rune('a' + i)), Weight: w}
	}
	return eps
}

// testBalancer builds a balancer over eps with an availability hook that
// reports the addresses in down as unavailable.
type testBalancer struct {
	*balancer
	mu   sync.Mutex
	down map[string]bool
}

func newTestBalancer(t testing.TB, def ir.Upstream, eps []*Endpoint) *testBalancer {
	t.Helper()
	u := &Upstream{def: def}
	tb := &testBalancer{down: map[string]bool{}}
	hook := func(e *Endpoint) bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return !tb.down[e.Address]
	}
	u.availHook.Store(&hook)
	b, ok := newBalancer(&u.def, u, eps)
	if !ok {
		t.Fatalf("algorithm %q not recognised", def.Algorithm)
	}
	tb.balancer = b
	return tb
}

func (tb *testBalancer) setDown(addrs ...string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	clear(tb.down)
	for _, a := range addrs {
		tb.down[a] = true
	}
}

func pickSeq(b Balancer, n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteString(b.Pick(&PickInfo{}).Address)
	}
	return sb.String()
}

func countPicks(b Balancer, info *PickInfo, n int) map[string]int {
	count := map[string]int{}
	for i := 0; i < n; i++ {
		count[b.Pick(info).Address]++
	}
	return count
}

var allAlgorithms = []string{AlgRoundRobin, AlgRandom, AlgLeastRequest, AlgConsistentHash, AlgEWMA}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	for _, tc := range []struct {
		weights []int32
		want    string
	}{
		{[]int32{5, 1, 1}, "aabacaa" + "aabacaa"}, // nginx's documented sequence
		{[]int32{1, 1, 1}, "abcabc"},
		{[]int32{2, 1}, "abaaba"},
		{[]int32{7}, "aaa"},
	} {
		b := newTestBalancer(t, ir.Upstream{Algorithm: AlgRoundRobin}, testEndpoints(tc.weights...))
		if got := pickSeq(b, len(tc.want)); got != tc.want {
			t.Errorf("weights %v: %s, want %s", tc.weights, got, tc.want)
		}
	}
	// Exact shares over many cycles.
	b := newTestBalancer(t, ir.Upstream{}, testEndpoints(3, 2, 5))
	if c := countPicks(b, &PickInfo{}, 10000); fmt.Sprint(c) != "map[a:3000 b:2000 c:5000]" {
		t.Fatalf("counts %v", c)
	}
	// A down endpoint's share goes to the others, still smoothly weighted.
	b.setDown("c")
	if c := countPicks(b, &PickInfo{}, 5000); fmt.Sprint(c) != "map[a:3000 b:2000]" {
		t.Fatalf("counts with c down %v", c)
	}
	if _, ok := newBalancer(&ir.Upstream{Algorithm: "nope"}, nil, testEndpoints(1, 2)); ok {
		t.Fatal("unknown algorithm reported as known")
	}
	if b, _ := newBalancer(&ir.Upstream{}, nil, nil); b.Pick(&PickInfo{}) != nil {
		t.Fatal("empty balancer picked something")
	}
}

// within checks that got is want ± tol (fractions of n).
func within(t *testing.T, what string, got, n int, want, tol float64) {
	t.Helper()
	if f := float64(got) / float64(n); f < want-tol || f > want+tol {
		t.Errorf("%s: share %.3f, want %.3f±%.3f", what, f, want, tol)
	}
}

func TestRandomWeighted(t *testing.T) {
	b := newTestBalancer(t, ir.Upstream{Algorithm: AlgRandom}, testEndpoints(1, 2, 7))
	const n = 20000
	c := countPicks(b, &PickInfo{}, n)
	within(t, "a", c["a"], n, 0.1, 0.02)
	within(t, "b", c["b"], n, 0.2, 0.02)
	within(t, "c", c["c"], n, 0.7, 0.02)
}

func TestLeastRequest(t *testing.T) {
	eps := testEndpoints(1, 1, 1, 1)
	b := newTestBalancer(t, ir.Upstream{Algorithm: AlgLeastRequest}, eps)
	eps[0].inflight.Store(5)
	eps[1].inflight.Store(1)
	c := countPicks(b, &PickInfo{}, 4000)
	if c["a"] != 0 {
		t.Errorf("busiest endpoint picked %d times", c["a"])
	}
	if c["c"] <= c["b"] || c["d"] <= c["b"] {
		t.Errorf("idle endpoints should win: %v", c)
	}
	// Idle: shares follow weights (ties go to the weighted first draw).
	b = newTestBalancer(t, ir.Upstream{Algorithm: AlgLeastRequest}, testEndpoints(1, 3))
	c = countPicks(b, &PickInfo{}, 20000)
	within(t, "b idle", c["b"], 20000, 0.75, 0.03)
	// Load is relative to weight: 4 in flight on weight 4 beats 2 on weight 1.
	eps = testEndpoints(1, 4)
	b = newTestBalancer(t, ir.Upstream{Algorithm: AlgLeastRequest}, eps)
	eps[0].inflight.Store(2)
	eps[1].inflight.Store(4)
	if c = countPicks(b, &PickInfo{}, 2000); c["a"] != 0 {
		t.Errorf("weighted load ignored: %v", c)
	}
}

func TestEWMAUnit(t *testing.T) {
	eps := testEndpoints(1, 1, 1)
	b := newTestBalancer(t, ir.Upstream{Algorithm: AlgEWMA}, eps)
	for range 5 {
		eps[0].observeLatency(50e6, false)
		eps[1].observeLatency(1e6, false)
		eps[2].observeLatency(2e6, false)
	}
	c := countPicks(b, &PickInfo{}, 3000)
	if c["a"] != 0 || c["b"] < c["c"] {
		t.Errorf("slow endpoint should lose every pair: %v", c)
	}
	// A failure makes an endpoint look slow at once.
	eps[1].observeLatency(0, true)
	if got := eps[1].lat.decayed(nanotime()); got < float64(failMin)*0.9 {
		t.Errorf("failure penalty %v", got)
	}
	// Estimates decay over time without traffic, so a slow endpoint is retried.
	var l latencyEWMA
	l.observe(1, 100e6, false)
	if v := l.decayed(1 + int64(ewmaDecay)*5); v > 1e6 {
		t.Errorf("no decay: %v", v)
	}
	// Peak: a higher observation is taken at once; a lower one blends in.
	l.observe(2, 200e6, false)
	if v := l.decayed(2); v != 200e6 {
		t.Errorf("peak %v", v)
	}
	l.observe(2+int64(ewmaDecay), 10e6, false)
	if v := l.decayed(2 + int64(ewmaDecay)); v < 10e6 || v > 200e6*0.4 {
		t.Errorf("blend %v", v)
	}
}

// TestAvoidAndAvailability covers, for every algorithm: the avoid list,
// skipping unavailable endpoints, and panic mode.
func TestAvoidAndAvailability(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://x/p", nil)
	req.RemoteAddr = "10.1.2.3:5555"
	for _, alg := range allAlgorithms {
		t.Run(alg, func(t *testing.T) {
			b := newTestBalancer(t, ir.Upstream{Algorithm: alg}, testEndpoints(1, 1, 1))
			info := &PickInfo{Request: req}
			first := b.Pick(info).Address
			info.Avoid = []string{first}
			for range 200 {
				if got := b.Pick(info).Address; got == first {
					t.Fatalf("avoided endpoint %s picked", got)
				}
			}
			// Everything avoided: still an answer (retry on a tried endpoint).
			info.Avoid = []string{"a", "b", "c"}
			if b.Pick(info) == nil {
				t.Fatal("nil pick with everything avoided")
			}
			info.Avoid = nil
			// Unavailable endpoints are skipped.
			b.setDown("a", "b")
			if c := countPicks(b, info, 300); c["c"] != 300 {
				t.Fatalf("unavailable picked: %v", c)
			}
			// Avoiding the only available endpoint retries it, not a down one.
			info.Avoid = []string{"c"}
			if got := b.Pick(info).Address; got != "c" {
				t.Fatalf("want the only available endpoint, got %s", got)
			}
			info.Avoid = nil
			// Panic mode: nothing available, so all are used (hash: one per key).
			b.setDown("a", "b", "c")
			c := countPicks(b, &PickInfo{}, 600)
			if len(c) != 3 {
				t.Fatalf("panic mode should spread over all endpoints: %v", c)
			}
			info.Avoid = []string{"a"}
			if c := countPicks(b, info, 300); c["a"] != 0 {
				t.Fatalf("panic mode ignored the avoid list: %v", c)
			}
		})
	}
}

func TestPickAllocs(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://x/some/path", nil)
	req.Header.Set("X-User", "alice")
	req.Header.Set("Cookie", "a=1; sid=abc; other=2")
	req.RemoteAddr = "10.0.0.1:1234"
	for _, alg := range allAlgorithms {
		for _, w := range [][]int32{{5, 1, 1}, {1, 1, 1}} {
			def := ir.Upstream{Name: "u", Algorithm: alg, UpstreamTraffic: ir.UpstreamTraffic{
				Hash: &ir.HashPolicy{Header: "x-user"}, Affinity: &ir.Affinity{Cookie: "sid"},
				Locality: &ir.Locality{Zone: "z"}, SlowStartMillis: 1000}}
			b := newTestBalancer(t, def, testEndpoints(w...))
			u := &Upstream{}
			u.lb.Store(b.balancer)
			info := &PickInfo{Request: req, Avoid: []string{"a"}}
			if a := testing.AllocsPerRun(1000, func() { u.Pick(info) }); a != 0 {
				t.Fatalf("%s weights %v: %v allocs per pick", alg, w, a)
			}
		}
	}
}

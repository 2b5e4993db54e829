package upstream

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"portico.dev/portico/internal/ir"
)

func hashEndpoints(n int) []*Endpoint {
	eps := make([]*Endpoint, n)
	for i := range eps {
		eps[i] = &Endpoint{Address: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1}
	}
	return eps
}

// keyMoveFraction maps nkeys keys over n endpoints, removes one endpoint and
// returns the fraction of keys whose endpoint changed, and the fraction of
// keys that moved although their endpoint stayed.
func keyMoveFraction(t testing.TB, n, nkeys int) (moved, needless float64) {
	def := ir.Upstream{Algorithm: AlgConsistentHash}
	eps := hashEndpoints(n)
	before := newTestBalancer(t, def, eps)
	after := newTestBalancer(t, def, append(append([]*Endpoint{}, eps[:3]...), eps[4:]...))
	gone := eps[3].Address
	var m, nl int
	for k := range nkeys {
		key := hashString("user-" + strconv.Itoa(k))
		f1 := filter{b: before.balancer, avail: true}
		f2 := filter{b: after.balancer, avail: true}
		a, b := before.hashPick(&f1, key), after.hashPick(&f2, key)
		if a != b && a.Address != b.Address {
			m++
			if a.Address != gone {
				nl++
			}
		}
	}
	return float64(m) / float64(nkeys), float64(nl) / float64(nkeys)
}

// TestConsistentHashKeyMove reports the share of keys that move when 1 of 10
// endpoints leaves (ideal: 10%).
func TestConsistentHashKeyMove(t *testing.T) {
	moved, needless := keyMoveFraction(t, 10, 100000)
	t.Logf("consistent hash: 1 of 10 endpoints left: %.2f%% of keys moved (%.2f%% needlessly)",
		100*moved, 100*needless)
	if moved < 0.08 || moved > 0.13 {
		t.Fatalf("moved %.3f", moved)
	}
}

func TestMaglevBalance(t *testing.T) {
	eps := hashEndpoints(10)
	eps[0].Weight = 3
	table := buildMaglev(eps)
	count := make([]int, len(eps))
	for _, i := range table {
		count[i]++
	}
	share := float64(count[0]) / float64(len(table))
	if share < 0.23 || share > 0.27 { // 3/12
		t.Errorf("weight-3 share %.3f", share)
	}
	for i := 1; i < 10; i++ {
		if s := float64(count[i]) / float64(len(table)); s < 0.075 || s > 0.092 {
			t.Errorf("endpoint %d share %.3f", i, s)
		}
	}
	// Order independence: replicas that list endpoints differently agree.
	rev := append([]*Endpoint{}, eps...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	t2 := buildMaglev(rev)
	for s := range table {
		if eps[table[s]] != rev[t2[s]] {
			t.Fatal("table depends on endpoint order")
		}
	}
}

func TestHashPolicies(t *testing.T) {
	mk := func(mod func(r *http.Request)) *PickInfo {
		r, _ := http.NewRequest("GET", "http://x/a/b", nil)
		r.RemoteAddr = "192.0.2.7:4444"
		mod(r)
		return &PickInfo{Request: r}
	}
	for _, tc := range []struct {
		name       string
		pol        *ir.HashPolicy
		key1, key2 *PickInfo
	}{
		{"header", &ir.HashPolicy{Header: "x-user"},
			mk(func(r *http.Request) { r.Header.Set("X-User", "alice") }),
			mk(func(r *http.Request) { r.Header.Set("X-User", "alice"); r.URL.Path = "/other" })},
		{"cookie", &ir.HashPolicy{Cookie: "sid"},
			mk(func(r *http.Request) { r.Header.Set("Cookie", "x=1; sid=s1") }),
			mk(func(r *http.Request) { r.Header.Set("Cookie", "sid=s1") })},
		{"source-ip", &ir.HashPolicy{SourceIP: true},
			mk(func(r *http.Request) {}),
			mk(func(r *http.Request) { r.RemoteAddr = "192.0.2.7:9999" })},
		{"path", &ir.HashPolicy{Path: true},
			mk(func(r *http.Request) { r.Header.Set("X-User", "a") }),
			mk(func(r *http.Request) { r.Header.Set("X-User", "b") })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := ir.Upstream{Algorithm: AlgConsistentHash, UpstreamTraffic: ir.UpstreamTraffic{Hash: tc.pol}}
			b := newTestBalancer(t, def, hashEndpoints(10))
			want := b.Pick(tc.key1)
			for range 50 {
				if b.Pick(tc.key1) != want || b.Pick(tc.key2) != want {
					t.Fatal("same key, different endpoints")
				}
			}
			// Different keys spread.
			seen := map[*Endpoint]bool{}
			for i := range 200 {
				r, _ := http.NewRequest("GET", "http://x/p"+strconv.Itoa(i), nil)
				r.Header.Set("X-User", strconv.Itoa(i))
				r.Header.Set("Cookie", "sid="+strconv.Itoa(i))
				r.RemoteAddr = "192.0.2." + strconv.Itoa(i) + ":1"
				seen[b.Pick(&PickInfo{Request: r})] = true
			}
			if len(seen) < 8 {
				t.Fatalf("keys reach only %d endpoints", len(seen))
			}
			// No key: random.
			r, _ := http.NewRequest("GET", "http://x/", nil)
			if tc.name != "path" && tc.name != "source-ip" {
				if c := countPicks(b, &PickInfo{Request: r}, 500); len(c) < 8 {
					t.Fatalf("missing key should pick at random: %v", c)
				}
			}
			// The key's endpoint down: the key moves, other keys stay.
			others := map[int]*Endpoint{}
			for i := range 300 {
				r, _ := http.NewRequest("GET", "http://x/q"+strconv.Itoa(i), nil)
				r.Header.Set("X-User", "u"+strconv.Itoa(i))
				r.Header.Set("Cookie", "sid=u"+strconv.Itoa(i))
				r.RemoteAddr = "198.51.100." + strconv.Itoa(i%250) + ":1"
				others[i] = b.Pick(&PickInfo{Request: r})
			}
			b.setDown(want.Address)
			if got := b.Pick(tc.key1); got == want {
				t.Fatal("down endpoint still gets the key")
			}
			for i, e := range others {
				if e == want {
					continue
				}
				r, _ := http.NewRequest("GET", "http://x/q"+strconv.Itoa(i), nil)
				r.Header.Set("X-User", "u"+strconv.Itoa(i))
				r.Header.Set("Cookie", "sid=u"+strconv.Itoa(i))
				r.RemoteAddr = "198.51.100." + strconv.Itoa(i%250) + ":1"
				if b.Pick(&PickInfo{Request: r}) != e {
					t.Fatal("a key of a healthy endpoint moved")
				}
			}
		})
	}
}

func TestHostOnlyAndCookie(t *testing.T) {
	for in, want := range map[string]string{"1.2.3.4:5": "1.2.3.4", "[::1]:80": "::1", "::1": "::1", "1.2.3.4": "1.2.3.4"} {
		if got := hostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q", in, got)
		}
	}
	h := http.Header{"Cookie": {"a=1; sidx=2", `sid="q"; b=3`}}
	if v := cookieValue(h, "sid"); v != "q" {
		t.Errorf("cookie %q", v)
	}
	if v := cookieValue(h, "none"); v != "" {
		t.Errorf("cookie %q", v)
	}
}

package upstream

import (
	"fmt"
	"strings"
	"testing"
)

func testEndpoints(weights ...int32) []*Endpoint {
	eps := make([]*Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = &Endpoint{Address: string(rune('a' + i)), Weight: w}
	}
	return eps
}

func pickSeq(b Balancer, n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteString(b.Pick().Address)
	}
	return sb.String()
}

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
		b, ok := newBalancer("round-robin", testEndpoints(tc.weights...))
		if !ok {
			t.Fatal("round-robin not recognised")
		}
		if got := pickSeq(b, len(tc.want)); got != tc.want {
			t.Errorf("weights %v: %s, want %s", tc.weights, got, tc.want)
		}
	}
	// Exact shares over many cycles.
	b, _ := newBalancer("", testEndpoints(3, 2, 5))
	count := map[string]int{}
	for i := 0; i < 10000; i++ {
		count[b.Pick().Address]++
	}
	if fmt.Sprint(count) != "map[a:3000 b:2000 c:5000]" {
		t.Fatalf("counts %v", count)
	}
	if _, ok := newBalancer("ewma", testEndpoints(1, 2)); ok {
		t.Fatal("unknown algorithm reported as known")
	}
	if b, _ := newBalancer("x", nil); b.Pick() != nil {
		t.Fatal("empty balancer picked something")
	}
}

func TestPickAllocs(t *testing.T) {
	for _, w := range [][]int32{{5, 1, 1}, {1, 1, 1}} {
		b, _ := newBalancer("", testEndpoints(w...))
		if a := testing.AllocsPerRun(1000, func() { b.Pick() }); a != 0 {
			t.Fatalf("weights %v: %v allocs per pick", w, a)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, tc := range []struct {
		name string
		w    []int32
	}{{"weighted-3", []int32{5, 1, 1}}, {"weighted-10", []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}, {"equal-3", []int32{1, 1, 1}}} {
		bal, _ := newBalancer("", testEndpoints(tc.w...))
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bal.Pick()
			}
		})
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bal.Pick()
				}
			})
		})
	}
}

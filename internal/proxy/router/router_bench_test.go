package router

import (
	"fmt"
	"net/http"
	"sort"
	"testing"

	"portico.dev/portico/internal/ir"
)

// benchRoutes builds n routes for one host, sorted the way translation sorts them
// (exact paths, then longer prefixes, then more header matches): a realistic mix of
// exact and prefix paths under per-service prefixes, some header matches, a few regexes.
func benchRoutes(host string, n int) []ir.Route {
	routes := make([]ir.Route, 0, n)
	for i := range n {
		svc := i / 10
		var r ir.Route
		switch i % 10 {
		case 0, 1, 2:
			r = rt(fmt.Sprintf("%s/exact-%d", host, i), exact(fmt.Sprintf("/svc%d/v1/items/%d", svc, i)))
		case 3:
			r = rt(fmt.Sprintf("%s/canary-%d", host, i), prefix(fmt.Sprintf("/svc%d/v2", svc)), hdr("X-Canary", "true"))
		case 4:
			r = rt(fmt.Sprintf("%s/regex-%d", host, i), regex(fmt.Sprintf(`/svc%d/users/[0-9]+`, svc)))
		case 5:
			r = rt(fmt.Sprintf("%s/post-%d", host, i), prefix(fmt.Sprintf("/svc%d/v1/orders", svc)), method("POST"))
		default:
			r = rt(fmt.Sprintf("%s/prefix-%d", host, i), prefix(fmt.Sprintf("/svc%d/v%d/res%d", svc, i%3, i)))
		}
		routes = append(routes, r)
	}
	rank := func(r *ir.Route) (int, int, int) {
		switch r.Path.Type {
		case ir.MatchExact:
			return 0, -len(r.Path.Value), -len(r.Headers)
		case ir.MatchRegex:
			return 1, -len(r.Path.Value), -len(r.Headers)
		}
		return 2, -len(r.Path.Value), -len(r.Headers)
	}
	sort.SliceStable(routes, func(a, b int) bool {
		a1, a2, a3 := rank(&routes[a])
		b1, b2, b3 := rank(&routes[b])
		if a1 != b1 {
			return a1 < b1
		}
		if a2 != b2 {
			return a2 < b2
		}
		return a3 < b3
	})
	// Every host keeps a catch-all prefix as its last route.
	return append(routes, rt(host+"/root", prefix("/")))
}

// benchListener spreads n routes over hosts of perHost routes each, plus a wildcard
// and a catch-all virtual host.
func benchListener(n, perHost int) *ir.Listener {
	l := listener()
	for h := 0; h*perHost < n; h++ {
		host := fmt.Sprintf("svc%d.example.com", h)
		l.VirtualHosts = append(l.VirtualHosts, vh(host, benchRoutes(host, min(perHost, n-h*perHost)-1)...))
	}
	l.VirtualHosts = append(l.VirtualHosts,
		vh("*.example.com", benchRoutes("wild", 9)...),
		vh("*", benchRoutes("any", 9)...))
	return l
}

type benchReq struct {
	host string
	req  *http.Request
}

// benchRequests is a mix of hits on exact, prefix, header, method and regex routes,
// wildcard and catch-all hosts, mixed case and ports, and paths that match only "/".
func benchRequests(l *ir.Listener) []benchReq {
	var out []benchReq
	hosts := len(l.VirtualHosts) - 2
	perHost := len(l.VirtualHosts[0].Routes)
	for i := range 64 {
		h := fmt.Sprintf("svc%d.example.com", (i*7)%hosts)
		svc := (i * 13) % max(1, perHost/10)
		idx := svc*10 + i%3
		var r benchReq
		switch i % 8 {
		case 0:
			r = benchReq{h, get(fmt.Sprintf("/svc%d/v1/items/%d", svc, idx))}
		case 1:
			r = benchReq{h + ":8080", get(fmt.Sprintf("/svc%d/v2/x", svc), "X-Canary", "true")}
		case 2:
			r = benchReq{h, get(fmt.Sprintf("/svc%d/v%d/res%d/deep/path", svc, (svc*10+6)%3, svc*10+6))}
		case 3:
			r = benchReq{h, req("POST", fmt.Sprintf("/svc%d/v1/orders/17", svc))}
		case 4:
			r = benchReq{h, get(fmt.Sprintf("/svc%d/users/1234", svc))}
		case 5:
			r = benchReq{"Svc1.Example.COM", get("/unknown/path")}
		case 6:
			r = benchReq{"api.example.com", get("/svc0/v1/items/1")}
		default:
			r = benchReq{"other.net:443", get("/svc0/users/9")}
		}
		out = append(out, r)
	}
	return out
}

func benchMatch(b *testing.B, l *ir.Listener) {
	tab := mustCompile(b, l)
	reqs := benchRequests(l)
	for _, r := range reqs {
		if _, ok := tab.Match(r.host, r.req); !ok {
			b.Fatalf("benchmark request %s %s does not match", r.host, r.req.URL)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := &reqs[i%len(reqs)]
		tab.Match(r.host, r.req)
	}
}

// BenchmarkMatch measures Match for listeners of growing size; allocs/op must be 0.
func BenchmarkMatch(b *testing.B) {
	b.Run("routes=10", func(b *testing.B) { benchMatch(b, benchListener(10, 10)) })
	b.Run("routes=1k", func(b *testing.B) { benchMatch(b, benchListener(1000, 100)) })
	b.Run("routes=10k", func(b *testing.B) { benchMatch(b, benchListener(10000, 100)) })
	// All routes on one host: the per-host index, not the host map, does the work.
	b.Run("routes=10k/one-host", func(b *testing.B) { benchMatch(b, benchListener(10000, 10000)) })
}

// BenchmarkCompile measures building a 10k-route table, the cost of a config swap.
func BenchmarkCompile(b *testing.B) {
	l := benchListener(10000, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(l); err != nil {
			b.Fatal(err)
		}
	}
}

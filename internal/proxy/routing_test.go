package proxy

import (
	"net/http"
	"strings"
	"testing"

	"portico.dev/portico/internal/ir"
)

func TestRoutingThroughNetwork(t *testing.T) {
	e := newEnv(t)
	a, b, c, d, f := echoBackend(t, "a"), echoBackend(t, "b"), echoBackend(t, "c"), echoBackend(t, "d"), echoBackend(t, "f")
	port := freePort(t)
	post := prefixRoute("post", "/api", "c")
	post.Method = http.MethodPost
	hdr := prefixRoute("hdr", "/api", "d")
	hdr.Headers = []ir.ValueMatch{{Type: ir.MatchExact, Name: "X-Canary", Value: "yes"}}
	qry := prefixRoute("qry", "/api", "f")
	qry.QueryParams = []ir.ValueMatch{{Type: ir.MatchExact, Name: "v", Value: "2"}}
	exact := prefixRoute("exact", "", "b")
	exact.Path = ir.PathMatch{Type: ir.MatchExact, Value: "/exact"}
	s := &ir.Snapshot{
		Listeners: []ir.Listener{httpListenerIR(port,
			ir.VirtualHost{Hostname: "b.example", Routes: []ir.Route{prefixRoute("b-host", "/", "b")}},
			ir.VirtualHost{Hostname: "*.wild.example", Routes: []ir.Route{prefixRoute("wild", "/", "c")}},
			anyHost(exact, post, hdr, qry, prefixRoute("api", "/api", "a")),
		)},
		Upstreams: []ir.Upstream{
			upstreamFor("a", addrOf(a)), upstreamFor("b", addrOf(b)), upstreamFor("c", addrOf(c)),
			upstreamFor("d", addrOf(d)), upstreamFor("f", addrOf(f)),
		},
	}
	e.apply(t, s)
	cl := newClient()
	u := base(port)
	cases := []struct {
		method, path string
		hdr          []string
		want         string
	}{
		{"GET", "/api/x", nil, "a"},
		{"GET", "/api/x", []string{"Host", "B.Example:8080"}, "b"},
		{"GET", "/x", []string{"Host", "a.wild.example"}, "c"},
		{"POST", "/api/x", nil, "c"},
		{"GET", "/api", []string{"X-Canary", "yes"}, "d"},
		{"GET", "/api?v=2", nil, "f"},
		{"GET", "/api?v=3", nil, "a"},
		{"GET", "/exact", nil, "b"},
		{"GET", "/public/../api/y", nil, "a"}, // cleaned before routing
	}
	for _, tc := range cases {
		r := do(t, cl, tc.method, u+tc.path, tc.hdr...)
		if r.status != 200 || r.echo.Backend != tc.want {
			t.Errorf("%s %s %v: status %d backend %q, want %q", tc.method, tc.path, tc.hdr, r.status, r.echo.Backend, tc.want)
		}
	}
	// No match anywhere: JSON 404.
	for _, p := range []string{"/apix", "/exact/more", "/"} {
		r := get(t, cl, u+p)
		if r.status != 404 || errorCode(t, r.body) != "route_not_found" ||
			r.header.Get("X-Portico-Error") != "route_not_found" ||
			r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q %v", p, r.status, r.body, r.header)
		}
	}
	// CONNECT is refused, not forwarded.
	if r := do(t, cl, http.MethodConnect, u+"/api"); r.status != 405 || errorCode(t, r.body) != "method_not_allowed" {
		t.Errorf("CONNECT: %d %s", r.status, r.body)
	}
	// The echoed path is cleaned.
	if r := get(t, cl, u+"/api//a/./b/../c/"); r.echo.Path != "/api/a/c/" {
		t.Errorf("cleaned path = %q", r.echo.Path)
	}
	// Encoded characters survive when no cleaning is needed.
	if r := get(t, cl, u+"/api/a%2Fb?q=1%202"); r.echo.RawPath != "/api/a%2Fb" || r.echo.Query != "q=1%202" {
		t.Errorf("escaped path/query changed: %q %q", r.echo.RawPath, r.echo.Query)
	}
}

func TestFilters(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	port := freePort(t)
	v2 := "/v2"
	root := "/"
	hdrs := prefixRoute("hdrs", "/hdrs", "a")
	hdrs.RequestHeaders = &ir.HeaderModifier{
		Set:    []ir.Header{{Name: "X-Set", Value: "set"}},
		Add:    []ir.Header{{Name: "X-Add", Value: "added"}},
		Remove: []string{"X-Remove"},
	}
	hdrs.ResponseHeaders = &ir.HeaderModifier{
		Set:    []ir.Header{{Name: "X-Resp-Set", Value: "r"}},
		Add:    []ir.Header{{Name: "X-Backend", Value: "extra"}},
		Remove: []string{"X-Drop"},
	}
	pfx := prefixRoute("pfx", "/api", "a")
	pfx.Rewrite = &ir.Rewrite{PrefixPath: &v2, Hostname: "rewritten.example"}
	pfxRoot := prefixRoute("pfxroot", "/strip/", "a")
	pfxRoot.Rewrite = &ir.Rewrite{PrefixPath: &root}
	full := prefixRoute("full", "/full", "a")
	full.Rewrite = &ir.Rewrite{FullPath: "/replaced"}
	s := simpleSnapshot(port, []ir.Upstream{upstreamFor("a", addrOf(a))}, hdrs, pfx, pfxRoot, full, prefixRoute("plain", "/", "a"))
	e.apply(t, s)
	cl := newClient()
	u := base(port)

	r := get(t, cl, u+"/hdrs", "X-Set", "client", "X-Add", "client", "X-Remove", "gone")
	h := http.Header(r.echo.Header)
	if h.Get("X-Set") != "set" || strings.Join(h.Values("X-Add"), ",") != "client,added" || h.Get("X-Remove") != "" {
		t.Errorf("request modifiers: %v", h)
	}
	if r.header.Get("X-Resp-Set") != "r" || strings.Join(r.header.Values("X-Backend"), ",") != "a,extra" {
		t.Errorf("response modifiers: %v", r.header)
	}

	paths := map[string]string{
		"/api/x?q=1": "/v2/x", "/api": "/v2", "/api/": "/v2/", "/strip/x/y": "/x/y", "/strip": "/",
		"/full/a/b": "/replaced", "/other": "/other",
	}
	for in, want := range paths {
		r := get(t, cl, u+in, "Host", "client.example")
		if r.echo.Path != want {
			t.Errorf("rewrite %s → %q, want %q", in, r.echo.Path, want)
		}
		wantHost := "client.example"
		if strings.HasPrefix(in, "/api") {
			wantHost = "rewritten.example"
			if in == "/api/x?q=1" && r.echo.Query != "q=1" {
				t.Errorf("query lost: %q", r.echo.Query)
			}
		}
		if r.echo.Host != wantHost {
			t.Errorf("%s: upstream Host %q, want %q (client Host preserved unless rewritten)", in, r.echo.Host, wantHost)
		}
	}
}

func TestRedirects(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	pfx := "/new"
	mk := func(name, prefix string, rd ir.Redirect) ir.Route {
		r := prefixRoute(name, prefix)
		r.Redirect = &rd
		return r
	}
	s := simpleSnapshot(port, nil,
		mk("https", "/secure", ir.Redirect{Scheme: "https", StatusCode: 301}),
		mk("host", "/host", ir.Redirect{Hostname: "other.example", StatusCode: 302}),
		mk("port", "/port", ir.Redirect{Port: 8443, Scheme: "https", StatusCode: 307}),
		mk("full", "/full", ir.Redirect{FullPath: "/landing", StatusCode: 308}),
		mk("prefix", "/old", ir.Redirect{PrefixPath: &pfx, StatusCode: 301}),
		mk("http80", "/plain", ir.Redirect{Scheme: "http", Hostname: "h.example", StatusCode: 302}),
	)
	e.apply(t, s)
	cl := newClient()
	u := base(port)
	cases := []struct {
		path, want string
		status     int
	}{
		{"/secure/a?x=1", "https://site.example/secure/a?x=1", 301},
		{"/host/p", "http://other.example:" + itoa(port) + "/host/p", 302},
		{"/port", "https://site.example:8443/port", 307},
		{"/full/deep", "http://site.example:" + itoa(port) + "/landing", 308},
		{"/old/x/y", "http://site.example:" + itoa(port) + "/new/x/y", 301},
		{"/old", "http://site.example:" + itoa(port) + "/new", 301},
		{"/plain", "http://h.example/plain", 302},
	}
	for _, tc := range cases {
		r := get(t, cl, u+tc.path, "Host", "site.example:"+itoa(port))
		if r.status != tc.status || r.header.Get("Location") != tc.want {
			t.Errorf("%s: %d %q, want %d %q", tc.path, r.status, r.header.Get("Location"), tc.status, tc.want)
		}
	}
}

func TestWeightedSplit(t *testing.T) {
	e := newEnv(t)
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	port := freePort(t)
	r := prefixRoute("split", "/")
	r.Backends = []ir.Backend{{Upstream: "a", Weight: 80}, {Upstream: "b", Weight: 20}}
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("a", addrOf(a)), upstreamFor("b", addrOf(b))}, r))
	cl := newClient()
	const n = 1000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		counts[get(t, cl, base(port)+"/").echo.Backend]++
	}
	// Expected 800/200; sd = sqrt(1000*0.8*0.2) ≈ 12.6. Allow 5 sd.
	if counts["a"] < 737 || counts["a"] > 863 || counts["a"]+counts["b"] != n {
		t.Fatalf("split %v, want about 80/20", counts)
	}
}

func TestNoBackend500(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, nil, prefixRoute("broken", "/")))
	r := get(t, newClient(), base(port)+"/x")
	if r.status != 500 || errorCode(t, r.body) != "no_valid_backend" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

package router

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portico.dev/portico/internal/ir"
)

// Builders keep the table tests short: a route is a name, a path match and options.

type opt func(*ir.Route)

func exact(v string) ir.PathMatch  { return ir.PathMatch{Type: ir.MatchExact, Value: v} }
func prefix(v string) ir.PathMatch { return ir.PathMatch{Type: ir.MatchPrefix, Value: v} }
func regex(v string) ir.PathMatch  { return ir.PathMatch{Type: ir.MatchRegex, Value: v} }

func method(m string) opt { return func(r *ir.Route) { r.Method = m } }

func hdr(name, value string) opt {
	return func(r *ir.Route) {
		r.Headers = append(r.Headers, ir.ValueMatch{Type: ir.MatchExact, Name: name, Value: value})
	}
}

func hdrRe(name, expr string) opt {
	return func(r *ir.Route) {
		r.Headers = append(r.Headers, ir.ValueMatch{Type: ir.MatchRegex, Name: name, Value: expr})
	}
}

func qry(name, value string) opt {
	return func(r *ir.Route) {
		r.QueryParams = append(r.QueryParams, ir.ValueMatch{Type: ir.MatchExact, Name: name, Value: value})
	}
}

func qryRe(name, expr string) opt {
	return func(r *ir.Route) {
		r.QueryParams = append(r.QueryParams, ir.ValueMatch{Type: ir.MatchRegex, Name: name, Value: expr})
	}
}

func rt(name string, p ir.PathMatch, opts ...opt) ir.Route {
	r := ir.Route{Name: name, Path: p}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func vh(host string, routes ...ir.Route) ir.VirtualHost {
	return ir.VirtualHost{Hostname: host, Routes: routes}
}

func listener(vhosts ...ir.VirtualHost) *ir.Listener {
	return &ir.Listener{Name: ":8080", Port: 8080, Protocol: ir.HTTP, VirtualHosts: vhosts}
}

func mustCompile(t testing.TB, l *ir.Listener) *Table {
	t.Helper()
	tab, err := Compile(l)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

// req builds a request for target ("/path?query"); headers come as name, value pairs.
func req(method, target string, headers ...string) *http.Request {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	r := &http.Request{Method: method, URL: u, Header: http.Header{}}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// get is req for a GET.
func get(target string, headers ...string) *http.Request { return req("GET", target, headers...) }

// matchName runs Match and returns the winning route's name, or "" for no match.
func matchName(t testing.TB, tab *Table, host string, r *http.Request) string {
	t.Helper()
	id, ok := tab.Match(host, r)
	if !ok {
		if id != -1 {
			t.Fatalf("Match returned id %d with ok=false", id)
		}
		return ""
	}
	if id < 0 || id >= len(tab.Routes()) {
		t.Fatalf("Match returned id %d out of range", id)
	}
	return tab.Routes()[id].Name
}

// matchCase is one row of a table test: a request and the route name expected ("" none).
type matchCase struct {
	name string
	host string
	req  *http.Request
	want string
}

func runCases(t *testing.T, tab *Table, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, "/", "_"), func(t *testing.T) {
			host := c.host
			if host == "" {
				host = "example.com"
			}
			if got := matchName(t, tab, host, c.req); got != c.want {
				t.Errorf("host %q %s %s: got route %q, want %q", host, c.req.Method, c.req.URL, got, c.want)
			}
		})
	}
}

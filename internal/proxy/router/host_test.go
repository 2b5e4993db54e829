package router

import (
	"strings"
	"testing"
)

func TestHostname(t *testing.T) {
	cases := []struct{ raw, want string }{
		{"example.com", "example.com"},
		{"example.com:8080", "example.com"},
		{"example.com:", "example.com"},
		{"example.com.", "example.com"},
		{"example.com.:443", "example.com"},
		{"Example.COM", "Example.COM"}, // folding happens in lookup
		{"[::1]", "::1"},
		{"[::1]:8443", "::1"},
		{"[2001:db8::1]:80", "2001:db8::1"},
		{"[::1", "[::1"},
		{"::1", "::1"}, // bare IPv6 literal: colons are not a port
		{"10.0.0.1:80", "10.0.0.1"},
		{"", ""},
	}
	for _, c := range cases {
		if got := hostname(c.raw); got != c.want {
			t.Errorf("hostname(%q) = %q, want %q", c.raw, got, c.want)
		}
	}
}

func hostTable(t *testing.T) *Table {
	return mustCompile(t, listener(
		vh("example.com", rt("exact", prefix("/"))),
		vh("foo.example.com", rt("foo-exact", prefix("/"))),
		vh("::1", rt("v6", prefix("/"))),
		vh("10.0.0.1", rt("v4", prefix("/"))),
		vh("*.b.example.com", rt("wild-b", prefix("/"))),
		vh("*.example.com", rt("wild", prefix("/"))),
		vh("*.org", rt("wild-org", prefix("/"))),
		vh("*", rt("any", prefix("/"))),
	))
}

func TestHostSelection(t *testing.T) {
	long := strings.Repeat("a", 300) + ".Example.COM"
	runCases(t, hostTable(t), []matchCase{
		{"exact", "example.com", get("/"), "exact"},
		{"exact with port", "example.com:8080", get("/"), "exact"},
		{"mixed case", "ExAmple.Com", get("/"), "exact"},
		{"upper case with port", "EXAMPLE.COM:80", get("/"), "exact"},
		{"trailing dot", "example.com.", get("/"), "exact"},
		{"trailing dot and port", "Example.Com.:80", get("/"), "exact"},
		{"exact beats wildcard", "foo.example.com", get("/"), "foo-exact"},
		{"wildcard one label", "bar.example.com", get("/"), "wild"},
		{"wildcard two labels", "a.c.example.com", get("/"), "wild"},
		{"wildcard mixed case", "BAR.Example.com:9000", get("/"), "wild"},
		{"longest suffix wins", "a.b.example.com", get("/"), "wild-b"},
		{"longest suffix deep", "x.y.b.example.com", get("/"), "wild-b"},
		{"wildcard needs a label", "b.example.com", get("/"), "wild"},
		{"empty label is not a label", ".example.com", get("/"), "any"},
		{"short wildcard", "example.org", get("/"), "wild-org"},
		{"wildcard excludes apex", "org", get("/"), "any"},
		{"ipv6 bracketed", "[::1]", get("/"), "v6"},
		{"ipv6 with port", "[::1]:8080", get("/"), "v6"},
		{"ipv4 with port", "10.0.0.1:80", get("/"), "v4"},
		{"catch-all", "other.net", get("/"), "any"},
		{"long mixed-case host", long, get("/"), "wild"},
	})
	// An empty Host header reaches only the catch-all.
	if got := matchName(t, hostTable(t), "", get("/")); got != "any" {
		t.Errorf("empty host: got %q, want any", got)
	}
}

func TestHostWithoutCatchAll(t *testing.T) {
	tab := mustCompile(t, listener(
		vh("example.com", rt("exact", prefix("/"))),
		vh("*.example.com", rt("wild", prefix("/"))),
	))
	runCases(t, tab, []matchCase{
		{"unknown host", "example.net", get("/"), ""},
		{"apex is not wildcard", "Example.com", get("/"), "exact"},
		{"suffix without dot", "badexample.com", get("/"), ""},
	})
}

func TestHostPatternsNormalised(t *testing.T) {
	// Compile folds case and a trailing dot in configured names too, and the first
	// virtual host keeps a repeated name.
	tab := mustCompile(t, listener(
		vh("API.Example.com.", rt("api", prefix("/"))),
		vh("api.example.com", rt("api-dup", prefix("/"))),
		vh("*.Example.COM", rt("wild", prefix("/"))),
		vh("*.example.com", rt("wild-dup", prefix("/"))),
		vh("*", rt("any", prefix("/"))),
		vh("*", rt("any-dup", prefix("/"))),
	))
	runCases(t, tab, []matchCase{
		{"exact", "api.example.com", get("/"), "api"},
		{"wildcard", "x.example.com", get("/"), "wild"},
		{"catch-all", "x", get("/"), "any"},
	})
}

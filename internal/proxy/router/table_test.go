package router

import (
	"sync"
	"testing"
)

func TestPrecedenceKeptUnderIndex(t *testing.T) {
	// Deliberately unusual orders: whichever route comes first wins, whatever index
	// (exact map, prefix trie, regex list) found it.
	tab := mustCompile(t, listener(vh("example.com",
		rt("exact-post", exact("/api/x"), method("POST")),
		rt("prefix-canary", prefix("/api"), hdr("X-Canary", "1")),
		rt("regex-get", regex(`/api/[a-z]`), method("GET")),
		rt("exact", exact("/api/x")),
		rt("deep-prefix", prefix("/api/y")),
		rt("shallow-prefix", prefix("/api")),
		rt("deeper-after-shallow", prefix("/api/z")), // shadowed by shallow-prefix
		rt("exact-after-prefix", exact("/api/q")),    // shadowed too
		rt("root", prefix("/")),
		rt("regex-last", regex(`/other`)), // shadowed by root
	)))
	runCases(t, tab, []matchCase{
		{"exact with method first", "", req("POST", "/api/x"), "exact-post"},
		{"prefix with header before exact", "", req("PUT", "/api/x", "X-Canary", "1"), "prefix-canary"},
		{"regex before exact", "", req("GET", "/api/x"), "regex-get"},
		{"exact after regex", "", req("PUT", "/api/x"), "exact"},
		{"deep prefix", "", req("PUT", "/api/y/1"), "deep-prefix"},
		{"shallow prefix", "", req("PUT", "/api/w"), "shallow-prefix"},
		{"earlier shallow beats later deeper", "", req("PUT", "/api/z/1"), "shallow-prefix"},
		{"earlier prefix beats later exact", "", req("PUT", "/api/q"), "shallow-prefix"},
		{"root", "", req("PUT", "/x"), "root"},
		{"root beats later regex", "", req("GET", "/other"), "root"},
	})
}

func TestDuplicateExactPaths(t *testing.T) {
	tab := mustCompile(t, listener(vh("example.com",
		rt("a-get", exact("/a"), method("GET")),
		rt("a-post", exact("/a"), method("POST")),
		rt("a", exact("/a")),
	)))
	runCases(t, tab, []matchCase{
		{"first", "", req("GET", "/a"), "a-get"},
		{"second", "", req("POST", "/a"), "a-post"},
		{"third", "", req("PUT", "/a"), "a"},
	})
}

func TestNoFallthroughToLessSpecificHost(t *testing.T) {
	tab := mustCompile(t, listener(
		vh("api.example.com", rt("api", prefix("/v1"))),
		vh("*.example.com", rt("wild", prefix("/"))),
		vh("*", rt("any", prefix("/"))),
	))
	runCases(t, tab, []matchCase{
		{"exact host matches", "api.example.com", get("/v1/x"), "api"},
		{"exact host misses: no wildcard", "api.example.com", get("/v2"), ""},
		{"wildcard matches", "x.example.com", get("/"), "wild"},
		{"catch-all", "example.net", get("/v2"), "any"},
	})
	tab = mustCompile(t, listener(
		vh("*.example.com", rt("wild", exact("/only"))),
		vh("*", rt("any", prefix("/"))),
	))
	runCases(t, tab, []matchCase{
		{"wildcard misses", "x.example.com", get("/other"), ""},
	})
}

func TestRoutesOrderAndIDs(t *testing.T) {
	l := listener(
		vh("a.example.com", rt("a1", prefix("/")), rt("a2", exact("/x"))),
		vh("*", rt("c1", prefix("/"))),
		vh("empty.example.com"),
	)
	tab := mustCompile(t, l)
	routes := tab.Routes()
	names := []string{"a1", "a2", "c1"}
	if len(routes) != len(names) {
		t.Fatalf("Routes() has %d routes, want %d", len(routes), len(names))
	}
	for i, n := range names {
		if routes[i].Name != n {
			t.Errorf("Routes()[%d] = %q, want %q", i, routes[i].Name, n)
		}
	}
	if id, ok := tab.Match("a.example.com", get("/x")); !ok || id != 0 {
		t.Errorf("Match = %d, %v; want 0, true", id, ok)
	}
	if id, ok := tab.Match("b", get("/x")); !ok || id != 2 {
		t.Errorf("Match = %d, %v; want 2, true", id, ok)
	}
	// A host whose virtual host has no routes matches nothing.
	if id, ok := tab.Match("empty.example.com", get("/")); ok || id != -1 {
		t.Errorf("empty vhost: Match = %d, %v; want -1, false", id, ok)
	}
	// The table owns copies: changing the listener afterwards does not change it.
	l.VirtualHosts[0].Routes[0].Name = "changed"
	if routes[0].Name != "a1" {
		t.Errorf("route copy changed with the listener")
	}
}

func TestEmptyListener(t *testing.T) {
	tab := mustCompile(t, listener())
	if id, ok := tab.Match("example.com", get("/")); ok || id != -1 {
		t.Errorf("Match = %d, %v; want -1, false", id, ok)
	}
	if len(tab.Routes()) != 0 {
		t.Errorf("Routes() = %d routes", len(tab.Routes()))
	}
}

func TestConcurrentMatch(t *testing.T) {
	tab := mustCompile(t, listener(vh("*",
		rt("re", regex(`/r/[0-9]+`)),
		rt("q", prefix("/q"), qryRe("v", "a.*")),
		rt("root", prefix("/")),
	)))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				if got := matchName(t, tab, "X.Example.com:80", get("/r/12")); got != "re" {
					t.Errorf("got %q", got)
					return
				}
				if got := matchName(t, tab, "x", get("/q?v=a%20b")); got != "q" {
					t.Errorf("got %q", got)
					return
				}
			}
		}()
	}
	wg.Wait()
}

package router

import (
	"net/http"
	"testing"
)

// TestMatchDoesNotAllocate proves the hot path allocates nothing for host, path,
// method, header and exact query matching, including mixed-case hosts and misses.
func TestMatchDoesNotAllocate(t *testing.T) {
	tab := mustCompile(t, listener(
		vh("api.example.com",
			rt("exact", exact("/v1/login"), method("POST")),
			rt("canary", prefix("/v1"), hdr("X-Canary", "true")),
			rt("ua", prefix("/v1"), hdrRe("User-Agent", `curl/.*`)),
			rt("multi", prefix("/v1"), hdr("X-Multi", "a,b")),
			rt("re", regex(`/v1/users/[0-9]+`)),
			rt("q", prefix("/v1/search"), qry("q", "a b")),
			rt("qre", prefix("/v1/find"), qryRe("q", `[a-z]+`)),
			rt("v1", prefix("/v1")),
		),
		vh("*.example.com", rt("wild", prefix("/"))),
		vh("::1", rt("v6", prefix("/"))),
		vh("*", rt("any", exact("/"))),
	))
	cases := []struct {
		host string
		req  *http.Request
		want string
	}{
		{"api.example.com", req("POST", "/v1/login"), "exact"},
		{"API.Example.COM:8443", req("POST", "/v1/login"), "exact"},
		{"api.example.com.", get("/v1/x", "X-Canary", "true"), "canary"},
		{"api.example.com", get("/v1/x", "User-Agent", "curl/8"), "ua"},
		{"api.example.com", get("/v1/x", "X-Multi", "a", "X-Multi", "b"), "multi"},
		{"api.example.com", get("/v1/users/42"), "re"},
		{"api.example.com", get("/v1/search?x=1&q=a%20b"), "q"},
		{"api.example.com", get("/v1/find?q=abc"), "qre"},
		{"api.example.com", get("/v1/other"), "v1"},
		{"Deep.Sub.Example.com", get("/x"), "wild"},
		{"[::1]:80", get("/x"), "v6"},
		{"other.net", get("/"), "any"},
		{"other.net", get("/nothing"), ""},
		{"api.example.com", get("/v2"), ""},
	}
	for _, c := range cases {
		if got := matchName(t, tab, c.host, c.req); got != c.want {
			t.Fatalf("%s %s: got %q, want %q", c.host, c.req.URL, got, c.want)
		}
		allocs := testing.AllocsPerRun(200, func() { tab.Match(c.host, c.req) })
		if allocs != 0 {
			t.Errorf("%s %s: %v allocations per Match, want 0", c.host, c.req.URL, allocs)
		}
	}
}

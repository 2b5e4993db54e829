package router

import "testing"

func TestMethod(t *testing.T) {
	tab := mustCompile(t, listener(vh("example.com",
		rt("post", prefix("/api"), method("POST")),
		rt("any", prefix("/api")),
		rt("get-only", exact("/g"), method("GET")),
	)))
	runCases(t, tab, []matchCase{
		{"method matches", "", req("POST", "/api/x"), "post"},
		{"other method falls to next route", "", req("GET", "/api/x"), "any"},
		{"case sensitive", "", req("post", "/api/x"), "any"},
		{"get", "", req("GET", "/g"), "get-only"},
		{"head is not get", "", req("HEAD", "/g"), ""},
	})
}

func TestHeaders(t *testing.T) {
	tab := mustCompile(t, listener(vh("*",
		rt("both", prefix("/"), hdr("x-env", "canary"), hdr("X-Team", "core")),
		rt("exact", prefix("/"), hdr("x-env", "canary")),
		rt("regex", prefix("/"), hdrRe("user-agent", `curl/[0-9.]+`)),
		rt("empty", prefix("/"), hdr("X-Empty", "")),
		rt("joined", prefix("/"), hdr("X-Multi", "a,b")),
		rt("joined-re", prefix("/"), hdrRe("X-Multi-Re", `a,b+`)),
		rt("host", prefix("/"), hdrRe("host", `h\.example\.com(:[0-9]+)?`)),
		rt("fallback", prefix("/")),
	)))
	runCases(t, tab, []matchCase{
		{"all hold", "", get("/", "X-Env", "canary", "X-Team", "core"), "both"},
		{"one of two", "", get("/", "X-Env", "canary", "X-Team", "edge"), "exact"},
		{"name case-insensitive", "", get("/", "X-ENV", "canary"), "exact"},
		{"value case-sensitive", "", get("/", "X-Env", "Canary"), "fallback"},
		{"absent", "", get("/"), "fallback"},
		{"regex whole value", "", get("/", "User-Agent", "curl/8.5.0"), "regex"},
		{"regex anchored end", "", get("/", "User-Agent", "curl/8.5.0 extra"), "fallback"},
		{"regex anchored start", "", get("/", "User-Agent", "xcurl/8"), "fallback"},
		{"empty value present", "", get("/", "X-Empty", ""), "empty"},
		{"empty value absent", "", get("/", "X-Other", ""), "fallback"},
		{"repeated joined", "", get("/", "X-Multi", "a", "X-Multi", "b"), "joined"},
		{"single value equal to joined", "", get("/", "X-Multi", "a,b"), "joined"},
		{"repeated differs", "", get("/", "X-Multi", "a", "X-Multi", "c"), "fallback"},
		{"repeated prefix only", "", get("/", "X-Multi", "a"), "fallback"},
		{"repeated too many", "", get("/", "X-Multi", "a", "X-Multi", "b", "X-Multi", "c"), "fallback"},
		{"repeated regex", "", get("/", "X-Multi-Re", "a", "X-Multi-Re", "bbb"), "joined-re"},
		{"host header", "h.example.com:8080", get("/"), "host"},
	})
}

func TestHostHeaderMatchInVHost(t *testing.T) {
	// The same catch-all vhost serves two hosts; a Host header match tells them apart.
	tab := mustCompile(t, listener(vh("*",
		rt("h", prefix("/"), hdr("Host", "h.example.com")),
		rt("other", prefix("/")),
	)))
	runCases(t, tab, []matchCase{
		{"host equal", "h.example.com", get("/"), "h"},
		{"host differs", "i.example.com", get("/"), "other"},
	})
}

func TestQueryParams(t *testing.T) {
	tab := mustCompile(t, listener(vh("example.com",
		rt("two", prefix("/"), qry("a", "1"), qry("b", "2")),
		rt("exact", prefix("/"), qry("a", "1")),
		rt("spaced", prefix("/"), qry("q", "hello world/&=")),
		rt("regex", prefix("/"), qryRe("v", `[0-9]+`)),
		rt("regex-escaped", prefix("/"), qryRe("name", `jo hn/.*`)),
		rt("empty", prefix("/"), qry("flag", "")),
		rt("escaped name", prefix("/"), qry("a b", "x")),
		rt("fallback", prefix("/")),
	)))
	runCases(t, tab, []matchCase{
		{"all hold", "", get("/?b=2&a=1"), "two"},
		{"one of two", "", get("/?a=1&b=3"), "exact"},
		{"name case-sensitive", "", get("/?A=1"), "fallback"},
		{"value differs", "", get("/?a=10"), "fallback"},
		{"absent", "", get("/?b=2"), "fallback"},
		{"first occurrence wins", "", get("/?a=2&a=1"), "fallback"},
		{"first occurrence matches", "", get("/?a=1&a=2"), "exact"},
		{"percent escapes", "", get("/?q=hello%20world%2F%26%3D"), "spaced"},
		{"plus is space", "", get("/?q=hello+world/%26%3d"), "spaced"},
		{"escaped hex case", "", get("/?a=%31"), "exact"},
		{"regex whole value", "", get("/?v=123"), "regex"},
		{"regex anchored", "", get("/?v=123x"), "fallback"},
		{"regex escaped value", "", get("/?name=jo%20hn%2Fdoe"), "regex-escaped"},
		{"regex plus value", "", get("/?name=jo+hn/"), "regex-escaped"},
		{"regex bad escape", "", get("/?name=jo%zzhn/"), "fallback"},
		{"no equals is empty", "", get("/?flag"), "empty"},
		{"equals empty", "", get("/?flag="), "empty"},
		{"escaped name", "", get("/?a%20b=x"), "escaped name"},
		{"plus in name", "", get("/?a+b=x"), "escaped name"},
		{"bad escape skipped", "", get("/?a=%G1&a=1"), "exact"},
		{"bad escape in value only", "", get("/?a=1%"), "fallback"},
		{"semicolon pair skipped", "", get("/?a=1;x=2"), "fallback"},
		{"semicolon elsewhere", "", get("/?x=1;y&a=1"), "exact"},
		{"empty pairs", "", get("/?&&a=1&"), "exact"},
		{"value with equals", "", get("/?v=1=2"), "fallback"},
		{"no query", "", get("/"), "fallback"},
	})
}

func TestMatchWithoutURL(t *testing.T) {
	tab := mustCompile(t, listener(vh("*",
		rt("q", prefix("/"), qry("a", "1")),
		rt("root", prefix("/")),
	)))
	r := get("/")
	r.URL = nil
	if got := matchName(t, tab, "x", r); got != "root" {
		t.Errorf("nil URL: got %q, want root", got)
	}
}

package router

import (
	"testing"

	"portico.dev/portico/internal/ir"
)

func TestExactPath(t *testing.T) {
	tab := mustCompile(t, listener(vh("example.com",
		rt("login", exact("/login")),
		rt("slash", exact("/api/")),
		rt("root", exact("/")),
	)))
	runCases(t, tab, []matchCase{
		{"equal", "", get("/login"), "login"},
		{"trailing slash differs", "", get("/login/"), ""},
		{"longer", "", get("/login/x"), ""},
		{"case sensitive", "", get("/Login"), ""},
		{"exact with slash", "", get("/api/"), "slash"},
		{"exact with slash needs it", "", get("/api"), ""},
		{"root", "", get("/"), "root"},
		{"query ignored", "", get("/login?x=1"), "login"},
	})
}

func TestPrefixSegments(t *testing.T) {
	tab := mustCompile(t, listener(vh("example.com",
		rt("api-v1", prefix("/api/v1")),
		rt("api", prefix("/api")),
		rt("docs", prefix("/docs/")), // trailing slash ignored
		rt("deep", prefix("/a/b/c")),
	)))
	runCases(t, tab, []matchCase{
		{"prefix itself", "", get("/api"), "api"},
		{"prefix with slash", "", get("/api/"), "api"},
		{"below prefix", "", get("/api/x"), "api"},
		{"not a segment", "", get("/apix"), ""},
		{"not a segment deeper", "", get("/api/v10"), "api"},
		{"longer prefix", "", get("/api/v1/users"), "api-v1"},
		{"longer prefix itself", "", get("/api/v1"), "api-v1"},
		{"longer prefix slash", "", get("/api/v1/"), "api-v1"},
		{"trailing-slash prefix without slash", "", get("/docs"), "docs"},
		{"trailing-slash prefix with slash", "", get("/docs/"), "docs"},
		{"trailing-slash prefix below", "", get("/docs/x/y"), "docs"},
		{"trailing-slash prefix not a segment", "", get("/docsx"), ""},
		{"deep", "", get("/a/b/c/d"), "deep"},
		{"deep partial", "", get("/a/b"), ""},
		{"deep partial segment", "", get("/a/b/cd"), ""},
		{"case sensitive", "", get("/API"), ""},
		{"root path", "", get("/"), ""},
		{"empty segment", "", get("//api"), ""},
	})
}

func TestRootPrefixMatchesEverything(t *testing.T) {
	tab := mustCompile(t, listener(vh("example.com",
		rt("api", prefix("/api")),
		rt("root", prefix("/")),
	)))
	runCases(t, tab, []matchCase{
		{"root", "", get("/"), "root"},
		{"anything", "", get("/x/y/z"), "root"},
		{"prefix sibling", "", get("/apix"), "root"},
		{"more specific first", "", get("/api/x"), "api"},
	})
	// A path that is not absolute (OPTIONS *) still matches "/".
	r := get("/")
	r.URL.Path = "*"
	if got := matchName(t, tab, "example.com", r); got != "root" {
		t.Errorf("path *: got %q, want root", got)
	}
	r.URL.Path = ""
	if got := matchName(t, tab, "example.com", r); got != "root" {
		t.Errorf("empty path: got %q, want root", got)
	}
}

func TestRegexPath(t *testing.T) {
	tab := mustCompile(t, listener(vh("example.com",
		rt("users", regex(`/users/[0-9]+`)),
		rt("alt", regex(`/a|/b`)),
		rt("ci", regex(`(?i)/case`)),
		rt("partial", regex(`v[0-9]`)),
	)))
	runCases(t, tab, []matchCase{
		{"whole", "", get("/users/42"), "users"},
		{"anchored end", "", get("/users/42/x"), ""},
		{"anchored start", "", get("/x/users/42"), ""},
		{"alternation anchored a", "", get("/a"), "alt"},
		{"alternation anchored b", "", get("/b"), "alt"},
		{"alternation not substring", "", get("/ab"), ""},
		{"alternation not suffix", "", get("/x/b"), ""},
		{"case-insensitive flag", "", get("/CASE"), "ci"},
		{"unanchored expression must match all", "", get("/v1"), ""},
	})
}

func TestRegexCannotEscapeAnchors(t *testing.T) {
	for _, expr := range []string{`a)|(b`, `x)|.*|(y`, `(`} {
		_, err := Compile(listener(vh("h", rt("r", regex(expr)))))
		if err == nil {
			t.Errorf("regex %q: Compile succeeded, want error", expr)
		}
	}
}

func TestRegexQuotedLiteral(t *testing.T) {
	tab := mustCompile(t, listener(vh("*",
		rt("open-quote", regex(`/\Q(a)|(b`)),
		rt("closed-quote", regex(`/\Q.\E[0-9]`)),
	)))
	runCases(t, tab, []matchCase{
		{"open quote literal", "", get("/(a)|(b"), "open-quote"},
		{"open quote not alternation", "", get("/(a)"), ""},
		{"closed quote", "", get("/.1"), "closed-quote"},
		{"closed quote is literal", "", get("/x1"), ""},
	})
}

func TestMatchedPrefix(t *testing.T) {
	tab := mustCompile(t, listener(vh("example.com",
		rt("api", prefix("/api")),
		rt("docs", prefix("/docs/")),
		rt("root", prefix("/")),
		rt("exact", exact("/x")),
		rt("re", regex("/y")),
	)))
	want := []struct {
		prefix string
		ok     bool
	}{{"/api", true}, {"/docs", true}, {"", true}, {"", false}, {"", false}}
	for id, w := range want {
		p, ok := tab.MatchedPrefix(id)
		if p != w.prefix || ok != w.ok {
			t.Errorf("MatchedPrefix(%d) = %q, %v; want %q, %v", id, p, ok, w.prefix, w.ok)
		}
	}
	for _, id := range []int{-1, len(want)} {
		if _, ok := tab.MatchedPrefix(id); ok {
			t.Errorf("MatchedPrefix(%d) ok for an ID out of range", id)
		}
	}
	// The configured value is untouched.
	if v := tab.Routes()[1].Path.Value; v != "/docs/" {
		t.Errorf("Routes()[1].Path.Value = %q", v)
	}
	// The remainder after the matched prefix starts with "/" or is empty.
	for _, path := range []string{"/docs", "/docs/", "/docs/a"} {
		id, ok := tab.Match("example.com", get(path))
		p, _ := tab.MatchedPrefix(id)
		if !ok || path[:len(p)] != p || (len(path) > len(p) && path[len(p)] != '/') {
			t.Errorf("%s: matched %d with prefix %q", path, id, p)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	bad := map[string]ir.Route{
		"unknown path type":   {Name: "r", Path: ir.PathMatch{Type: "Glob", Value: "/*"}},
		"empty path type":     {Name: "r", Path: ir.PathMatch{Value: "/"}},
		"relative prefix":     rt("r", prefix("api")),
		"bad path regex":      rt("r", regex("[")),
		"bad header regex":    rt("r", prefix("/"), hdrRe("X", "(")),
		"bad query regex":     rt("r", prefix("/"), qryRe("q", "*")),
		"unknown header type": {Name: "r", Path: prefix("/"), Headers: []ir.ValueMatch{{Type: "Prefix", Name: "X", Value: "a"}}},
		"unknown query type":  {Name: "r", Path: prefix("/"), QueryParams: []ir.ValueMatch{{Type: "Prefix", Name: "q", Value: "a"}}},
	}
	for name, r := range bad {
		if _, err := Compile(listener(vh("h", rt("ok", prefix("/")), r))); err == nil {
			t.Errorf("%s: Compile succeeded, want error", name)
		}
	}
}

func TestDeeplyNestedPrefixes(t *testing.T) {
	// More route-bearing levels than Match keeps on the stack; precedence must hold.
	// Odd levels need a header, so the deepest matching route varies with the request.
	var routes []ir.Route
	const depth = 3 * maxLists
	p := ""
	var paths []string
	for range depth {
		p += "/s"
		paths = append(paths, p)
	}
	for i := depth - 1; i >= 0; i-- {
		name := paths[i]
		if i%2 == 1 {
			routes = append(routes, rt(name, prefix(paths[i]), hdr("X-Deep", "1")))
		} else {
			routes = append(routes, rt(name, prefix(paths[i])))
		}
	}
	tab := mustCompile(t, listener(vh("*", routes...)))
	for i := range depth {
		target := paths[i] + "/x"
		if got := matchName(t, tab, "h", get(target)); got != paths[i-i%2] {
			t.Errorf("%s: got %q, want %q", target, got, paths[i-i%2])
		}
		if got := matchName(t, tab, "h", get(target, "X-Deep", "1")); got != paths[i] {
			t.Errorf("%s with header: got %q, want %q", target, got, paths[i])
		}
	}
}

func TestRegexIndexedByLiteralSegments(t *testing.T) {
	tab := mustCompile(t, listener(vh("*",
		rt("ver", regex(`/api/v[0-9]+/.*`)),
		rt("api-exact-re", regex(`/api`)),
		rt("ci", regex(`(?i)/API/x`)),
		rt("api", prefix("/api/v1")),
		rt("alt", regex(`/(a|b)/c`)),
		rt("dot", regex(`.*\.php`)),
	)))
	runCases(t, tab, []matchCase{
		{"under literal", "", get("/api/v2/x"), "ver"},
		{"literal without trailing slash", "", get("/api"), "api-exact-re"},
		{"case-insensitive not indexed by case", "", get("/api/X"), "ci"},
		{"case-insensitive other case", "", get("/Api/x"), "ci"},
		{"prefix after regex", "", get("/api/v1"), "api"},
		{"alternation at root", "", get("/b/c"), "alt"},
		{"suffix regex at root", "", get("/deep/x/index.php"), "dot"},
		{"nothing", "", get("/api/w"), ""},
	})
}

package cors

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"portico.dev/portico/internal/plugin"
)

func build(t testing.TB, cfg string) *plugin.Chain {
	t.Helper()
	ch, err := plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(cfg)}}, &plugin.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// do runs a request with headers h through access and, unless answered locally,
// response headers; it returns the status and response headers.
func do(t testing.TB, ch *plugin.Chain, method string, h map[string]string) (int, http.Header) {
	t.Helper()
	r, _ := http.NewRequest(method, "http://api.local/x", nil)
	for k, v := range h {
		r.Header.Set(k, v)
	}
	c := &plugin.Context{Request: r}
	if err := ch.Run(plugin.PhaseAccess, c); err != nil {
		var reply *plugin.Reply
		if !errors.As(err, &reply) {
			t.Fatal(err)
		}
		return reply.Status, reply.Header
	}
	c.Status, c.Header = 200, http.Header{}
	if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
		t.Fatal(err)
	}
	return c.Status, c.Header
}

const cfg = `{"allowOrigins":["https://app.example.com"],"allowMethods":["get","post"],
  "allowHeaders":["Content-Type","X-Token"],"exposeHeaders":["X-Request-Id"],"allowCredentials":true,"maxAge":"10m"}`

func TestPreflight(t *testing.T) {
	ch := build(t, cfg)
	st, h := do(t, ch, "OPTIONS", map[string]string{"Origin": "https://app.example.com",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-token, content-type"})
	if st != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		h.Get("Access-Control-Allow-Methods") != "GET, POST" || h.Get("Access-Control-Allow-Headers") != "Content-Type, X-Token" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Max-Age") != "600" || h.Get("Vary") == "" {
		t.Fatalf("%d %v", st, h)
	}
	for name, req := range map[string]map[string]string{
		"origin":  {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
		"method":  {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
		"headers": {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Other"},
	} {
		st, h := do(t, ch, "OPTIONS", req)
		if st != 204 || h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("disallowed %s: %d %v", name, st, h)
		}
	}
	// A plain OPTIONS (no Access-Control-Request-Method) goes upstream.
	if st, h := do(t, ch, "OPTIONS", map[string]string{"Origin": "https://app.example.com"}); st != 200 || h.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("plain OPTIONS %d %v", st, h)
	}
}

func TestActualRequests(t *testing.T) {
	ch := build(t, cfg)
	_, h := do(t, ch, "GET", map[string]string{"Origin": "https://APP.example.com"})
	if h.Get("Access-Control-Allow-Origin") != "https://APP.example.com" || h.Get("Access-Control-Allow-Credentials") != "true" ||
		h.Get("Access-Control-Expose-Headers") != "X-Request-Id" || h.Get("Vary") != "Origin" {
		t.Fatalf("allowed: %v", h)
	}
	_, h = do(t, ch, "GET", map[string]string{"Origin": "https://evil.example"})
	if h.Get("Access-Control-Allow-Origin") != "" || h.Get("Vary") != "Origin" {
		t.Fatalf("disallowed: %v", h)
	}
	if _, h = do(t, ch, "GET", nil); h.Get("Access-Control-Allow-Origin") != "" || h.Get("Vary") != "Origin" {
		t.Fatalf("no origin: %v", h)
	}
}

func TestWildcard(t *testing.T) {
	ch := build(t, `{"allowOrigins":["*"]}`)
	_, h := do(t, ch, "GET", map[string]string{"Origin": "https://any.example"})
	if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Vary") != "" {
		t.Fatalf("%v", h)
	}
	st, h := do(t, ch, "OPTIONS", map[string]string{"Origin": "https://any.example",
		"Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "X-Anything"})
	if st != 204 || h.Get("Access-Control-Allow-Headers") != "X-Anything" || h.Get("Access-Control-Max-Age") != "" ||
		h.Get("Access-Control-Allow-Methods") != "GET, HEAD, POST, PUT, PATCH, DELETE" {
		t.Fatalf("%d %v", st, h)
	}
}

func TestConfigValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{}`: "allowOrigins",
		`{"allowOrigins":["*"],"allowCredentials":true}`:             "allowOrigins[0]",
		`{"allowOrigins":["https://a.example","app.example.com"]}`:   "allowOrigins[1]",
		`{"allowOrigins":["https://a.example/path"]}`:                "allowOrigins[0]",
		`{"allowOrigins":["*"],"allowMethods":["GET","BAD METHOD"]}`: "allowMethods[1]",
		`{"allowOrigins":["*"],"allowHeaders":["ok","no:colon"]}`:    "allowHeaders[1]",
		`{"allowOrigins":["*"],"exposeHeaders":[""]}`:                "exposeHeaders[0]",
		`{"allowOrigins":["*"],"maxAge":-5}`:                         "maxAge",
	} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		var fe *plugin.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v, want field %q", cfg, err, field)
		}
	}
}

func BenchmarkActualRequest(b *testing.B) {
	ch := build(b, cfg)
	r, _ := http.NewRequest("GET", "http://api.local/x", nil)
	r.Header.Set("Origin", "https://app.example.com")
	c := &plugin.Context{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		c.Request = r
		_ = ch.Run(plugin.PhaseAccess, c)
		c.Status, c.Header = 200, http.Header{}
		_ = ch.Run(plugin.PhaseResponseHeaders, c)
	}
}

func BenchmarkPreflight(b *testing.B) {
	ch := build(b, cfg)
	r, _ := http.NewRequest("OPTIONS", "http://api.local/x", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "POST")
	c := &plugin.Context{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		c.Request = r
		_ = ch.Run(plugin.PhaseAccess, c)
	}
}

package transformer

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/gatewaytest"
)

func build(t testing.TB, name, cfg string) *plugin.Chain {
	t.Helper()
	ch, err := plugin.Build([]plugin.Spec{{Name: name, Config: json.RawMessage(cfg)}}, &plugin.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

const reqCfg = `{"headers":{"set":{"x-env":"prod","Host":"internal.svc"},"add":{"X-Tag":"b"},"remove":["Cookie"]},
  "query":{"set":{"version":"2"},"remove":["debug"]},
  "path":{"regex":"^/api/v1/(?P<rest>.*)$","replacement":"/v2/${rest}"}}`

func TestRequestTransformer(t *testing.T) {
	ch := build(t, RequestName, reqCfg)
	r, _ := http.NewRequest("GET", "http://api.local/api/v1/users/7?debug=1&a=x&version=1", nil)
	r.Header.Set("Cookie", "s=1")
	r.Header.Set("X-Env", "dev")
	r.Header.Set("X-Tag", "a")
	if err := ch.Run(plugin.PhaseUpstreamRequest, &plugin.Context{Request: r}); err != nil {
		t.Fatal(err)
	}
	if r.URL.Path != "/v2/users/7" || r.URL.RawQuery != "a=x&version=2" || r.Host != "internal.svc" ||
		r.Header.Get("Cookie") != "" || r.Header.Get("X-Env") != "prod" || strings.Join(r.Header["X-Tag"], ",") != "a,b" {
		t.Fatalf("%s %s %s %v", r.URL.Path, r.URL.RawQuery, r.Host, r.Header)
	}
	// A path the regex does not match is left alone.
	r, _ = http.NewRequest("GET", "http://api.local/other", nil)
	_ = ch.Run(plugin.PhaseUpstreamRequest, &plugin.Context{Request: r})
	if r.URL.Path != "/other" {
		t.Fatal(r.URL.Path)
	}
}

func TestResponseTransformer(t *testing.T) {
	ch := build(t, ResponseName, `{"headers":{"set":{"Cache-Control":"no-store"},"add":{"Vary":"X-Tenant"},"remove":["Server","X-Powered-By"]}}`)
	c := &plugin.Context{Status: 200, Header: http.Header{"Server": {"nginx"}, "X-Powered-By": {"php"}, "Vary": {"Origin"}}}
	if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
		t.Fatal(err)
	}
	if c.Header.Get("Server") != "" || c.Header.Get("X-Powered-By") != "" || c.Header.Get("Cache-Control") != "no-store" ||
		strings.Join(c.Header["Vary"], ",") != "Origin,X-Tenant" {
		t.Fatal(c.Header)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct{ name, cfg, field string }{
		{RequestName, `{"headers":{"set":{"bad name":"x"}}}`, "headers.set.bad name"},
		{RequestName, `{"headers":{"add":{"X-A":"a\r\nInjected: 1"}}}`, "headers.add.X-A"},
		{RequestName, `{"headers":{"remove":["Content-Length"]}}`, "headers.remove[0]"},
		{RequestName, `{"path":{"regex":"(","replacement":"/"}}`, "path.regex"},
		{RequestName, `{"path":{"regex":"^/a/(.*)$","replacement":"/b/$2"}}`, "path.replacement"},
		{RequestName, `{"path":{"regex":"^/a/(?P<x>.*)$","replacement":"/b/${y}"}}`, "path.replacement"},
		{RequestName, `{"query":{"remove":[""]}}`, "query.remove[0]"},
		{ResponseName, `{"headers":{"set":{"Transfer-Encoding":"chunked"}}}`, "headers.set.Transfer-Encoding"},
	} {
		_, err := plugin.DecodeConfig(tc.name, json.RawMessage(tc.cfg))
		if err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%s: %v", tc.cfg, err)
		}
	}
}

func TestDataPlane(t *testing.T) {
	base := gatewaytest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "backend")
		_, _ = io.WriteString(w, r.Host+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Env")+" "+r.Header.Get("Cookie"))
	}), gatewaytest.Spec(RequestName, reqCfg), gatewaytest.Spec(ResponseName, `{"headers":{"remove":["Server"],"set":{"X-Frame-Options":"DENY"}}}`))
	req, _ := http.NewRequest("GET", base+"/api/v1/items?debug=true", nil)
	req.Header.Set("Cookie", "secret")
	resp, err := gatewaytest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "internal.svc /v2/items?version=2 prod " || resp.Header.Get("Server") != "" ||
		resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("%q %v", body, resp.Header)
	}
}

func BenchmarkRequestTransformer(b *testing.B) {
	ch := build(b, RequestName, `{"headers":{"set":{"X-Env":"prod"},"remove":["Cookie"]},"path":{"regex":"^/api/v1/(.*)$","replacement":"/v2/$1"}}`)
	r, _ := http.NewRequest("GET", "http://api.local/api/v1/users/7", nil)
	c := &plugin.Context{Request: r}
	b.ReportAllocs()
	for b.Loop() {
		r.URL.Path = "/api/v1/users/7"
		_ = ch.Run(plugin.PhaseUpstreamRequest, c)
	}
}

func BenchmarkResponseTransformer(b *testing.B) {
	ch := build(b, ResponseName, `{"headers":{"set":{"X-Frame-Options":"DENY"},"remove":["Server"]}}`)
	c := &plugin.Context{Status: 200, Header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		_ = ch.Run(plugin.PhaseResponseHeaders, c)
	}
}

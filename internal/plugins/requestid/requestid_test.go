package requestid

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/gatewaytest"
)

func build(t testing.TB, cfg string) *plugin.Chain {
	t.Helper()
	ch, err := plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(cfg)}}, &plugin.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// run passes a request with headers hdr through rewrite and response headers.
func run(t testing.TB, ch *plugin.Chain, hdr http.Header) (req, resp http.Header) {
	t.Helper()
	r, _ := http.NewRequest("GET", "http://api.local/x", nil)
	r.Header = hdr
	c := &plugin.Context{Request: r}
	if err := ch.Run(plugin.PhaseRewrite, c); err != nil {
		t.Fatal(err)
	}
	c.Status, c.Header = 200, http.Header{}
	if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
		t.Fatal(err)
	}
	return r.Header, c.Header
}

func TestIfMissing(t *testing.T) {
	ch := build(t, `{}`)
	req, resp := run(t, ch, http.Header{"X-Request-Id": {"client-1"}})
	if req.Get("X-Request-Id") != "client-1" || resp.Get("X-Request-Id") != "client-1" {
		t.Fatalf("propagated: %v %v", req, resp)
	}
	req, resp = run(t, ch, http.Header{})
	id := req.Get("X-Request-Id")
	if id == "" || resp.Get("X-Request-Id") != id || !strings.Contains(id, "-r") {
		t.Fatalf("generated: %v %v", req, resp)
	}
}

func TestAlwaysAndCustomHeader(t *testing.T) {
	ch := build(t, `{"header":"x-correlation-id","generate":"always","includeInResponse":false}`)
	req, resp := run(t, ch, http.Header{"X-Correlation-Id": {"forged"}, "X-Request-Id": {"core-1"}})
	if v := req.Get("X-Correlation-Id"); v == "forged" || v == "" || req.Get("X-Request-Id") != "core-1" {
		t.Fatalf("always: %v", req)
	}
	if resp.Get("X-Correlation-Id") != "" {
		t.Fatalf("includeInResponse false: %v", resp)
	}
	// if-missing with another header reuses the core's id.
	ch = build(t, `{"header":"X-Correlation-Id"}`)
	req, resp = run(t, ch, http.Header{"X-Request-Id": {"core-2"}})
	if req.Get("X-Correlation-Id") != "core-2" || resp.Get("X-Correlation-Id") != "core-2" {
		t.Fatalf("consistent with core: %v %v", req, resp)
	}
}

func TestUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := Next()
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
	}
}

func TestConfigValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{"header":"bad header"}`:  "header",
		`{"generate":"sometimes"}`: "generate",
	} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		if err == nil || !strings.HasPrefix(err.Error(), field+":") {
			t.Errorf("%s: %v", cfg, err)
		}
	}
}

func TestDataPlane(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Core", r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Seen-Corr", r.Header.Get("X-Correlation-Id"))
	})
	base := gatewaytest.Start(t, backend, gatewaytest.Spec(Name, `{"header":"X-Correlation-Id"}`))
	cl := gatewaytest.Client()
	resp, err := cl.Get(base + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	core, corr := resp.Header.Get("X-Seen-Core"), resp.Header.Get("X-Seen-Corr")
	if core == "" || core != corr || resp.Header.Get("X-Correlation-Id") != core || resp.Header.Get("X-Request-Id") != core {
		t.Fatalf("ids differ: %v", resp.Header)
	}

	base = gatewaytest.Start(t, backend, gatewaytest.Spec(Name, `{"generate":"always"}`))
	req, _ := http.NewRequest("GET", base+"/x", nil)
	req.Header.Set("X-Request-Id", "forged")
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if id := resp.Header.Get("X-Request-Id"); id == "forged" || id != resp.Header.Get("X-Seen-Core") {
		t.Fatalf("always: %v", resp.Header)
	}
}

func BenchmarkRequestID(b *testing.B) {
	ch := build(b, `{}`)
	r, _ := http.NewRequest("GET", "http://api.local/x", nil)
	c := &plugin.Context{}
	resp := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		delete(r.Header, "X-Request-Id")
		c.Reset()
		c.Request = r
		_ = ch.Run(plugin.PhaseRewrite, c)
		c.Status, c.Header = 200, resp
		_ = ch.Run(plugin.PhaseResponseHeaders, c)
	}
}

package redirect

import (
	"crypto/tls"
	"encoding/json"
	"errors"
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

// rewrite runs the rewrite phase; it returns the reply, nil when the request goes on.
func rewrite(t testing.TB, ch *plugin.Chain, r *http.Request) *plugin.Reply {
	t.Helper()
	err := ch.Run(plugin.PhaseRewrite, &plugin.Context{Request: r})
	if err == nil {
		return nil
	}
	var reply *plugin.Reply
	if !errors.As(err, &reply) {
		t.Fatal(err)
	}
	return reply
}

func TestRedirect(t *testing.T) {
	ch := build(t, `{"httpToHttps":true}`)
	r, _ := http.NewRequest("GET", "http://api.example.com:8080/a%20b/c?x=1&y=2", nil)
	rep := rewrite(t, ch, r)
	if rep == nil || rep.Status != 301 || rep.Header.Get("Location") != "https://api.example.com/a%20b/c?x=1&y=2" {
		t.Fatalf("%+v", rep)
	}
	r.TLS = &tls.ConnectionState{}
	if rewrite(t, ch, r) != nil {
		t.Fatal("TLS request redirected")
	}

	ch = build(t, `{"httpToHttps":true,"httpsPort":8443,"statusCode":308}`)
	r, _ = http.NewRequest("POST", "http://[::1]:8080", nil)
	if rep := rewrite(t, ch, r); rep == nil || rep.Status != 308 || rep.Header.Get("Location") != "https://[::1]:8443/" {
		t.Fatalf("%+v", rep)
	}
}

func TestForwardedProto(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://api.example.com/x", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	if rewrite(t, build(t, `{"httpToHttps":true}`), r) == nil {
		t.Fatal("X-Forwarded-Proto trusted by default")
	}
	if rewrite(t, build(t, `{"httpToHttps":true,"trustForwardedProto":true}`), r) != nil {
		t.Fatal("trusted X-Forwarded-Proto ignored")
	}
	if rewrite(t, build(t, `{"httpToHttps":false}`), r) != nil {
		t.Fatal("disabled plugin redirected")
	}
}

func TestConfigValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{"httpToHttps":true,"statusCode":303}`:  "statusCode",
		`{"httpToHttps":true,"httpsPort":70000}`: "httpsPort",
	} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		if err == nil || !strings.HasPrefix(err.Error(), field+":") {
			t.Errorf("%s: %v", cfg, err)
		}
	}
}

func TestDataPlane(t *testing.T) {
	base := gatewaytest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("request reached the backend")
	}), gatewaytest.Spec(Name, `{"httpToHttps":true,"statusCode":307}`))
	req, _ := http.NewRequest("GET", base+"/p?q=1", nil)
	req.Host = "shop.example.com"
	resp, err := gatewaytest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 307 || resp.Header.Get("Location") != "https://shop.example.com/p?q=1" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

func BenchmarkRedirect(b *testing.B) {
	ch := build(b, `{"httpToHttps":true}`)
	r, _ := http.NewRequest("GET", "http://api.example.com/a/b?x=1", nil)
	c := &plugin.Context{Request: r}
	b.ReportAllocs()
	for b.Loop() {
		_ = ch.Run(plugin.PhaseRewrite, c)
	}
}

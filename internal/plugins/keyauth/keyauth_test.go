package keyauth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portico.dev/portico/internal/plugin"
)

func hashOf(key string) string { s := sha256.Sum256([]byte(key)); return hex.EncodeToString(s[:]) }

func consumer(name, key string) *plugin.Consumer {
	return &plugin.Consumer{Name: name, Credentials: []plugin.Credential{
		{Type: "basic-auth", Fields: map[string]string{"passwordHash": "x"}},
		{Type: CredentialType, Fields: map[string]string{"keyHash": hashOf(key)}},
	}}
}

func env(cs ...*plugin.Consumer) *plugin.Env { return &plugin.Env{Consumers: plugin.NewConsumers(cs)} }

func build(t *testing.T, cfg string, e *plugin.Env) *KeyAuth {
	t.Helper()
	c, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
	if err != nil {
		t.Fatal(err)
	}
	k, err := New(c.(*Config), e)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func request(target string, hdr ...string) *plugin.Context {
	u, _ := url.Parse(target)
	r := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return &plugin.Context{Request: r}
}

func status(err error) int {
	var r *plugin.Reply
	if errors.As(err, &r) {
		return r.Status
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestHeaderKey(t *testing.T) {
	k := build(t, `{}`, env(consumer("alice", "a-key"), consumer("bob", "b-key")))
	c := request("/x", "apikey", "b-key", HeaderUsername, "mallory", HeaderAnonymous, "true")
	if err := k.Access(c); err != nil {
		t.Fatal(err)
	}
	h := c.Request.Header
	if c.Consumer.Name != "bob" || h.Get("apikey") != "" || h[HeaderUsername][0] != "bob" ||
		len(h[HeaderUsername]) != 1 || h[HeaderAnonymous] != nil {
		t.Fatalf("consumer %v header %v", c.Consumer, h)
	}
}

func TestRejections(t *testing.T) {
	k := build(t, `{}`, env(consumer("alice", "a-key")))
	for _, tc := range []struct {
		hdr  []string
		want string
	}{
		{nil, "missing API key"},
		{[]string{"apikey", ""}, "missing API key"},
		{[]string{"apikey", "wrong"}, "invalid API key"},
		{[]string{"x-api-key", "a-key"}, "missing API key"},
	} {
		c := request("/x", tc.hdr...)
		err := k.Access(c)
		var r *plugin.Reply
		if !errors.As(err, &r) || r.Status != 401 || c.Consumer != nil {
			t.Fatalf("%v: %v", tc.hdr, err)
		}
		want := `{"error":{"code":"unauthorized","message":"` + tc.want + `"}}`
		if string(r.Body) != want || r.Header.Get("WWW-Authenticate") != `Key realm="portico"` ||
			r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%v: %s %v", tc.hdr, r.Body, r.Header)
		}
	}
}

func TestQueryKey(t *testing.T) {
	k := build(t, `{"header":"X-Key","query":"api_key"}`, env(consumer("alice", "a key&=")))
	c := request("/x?a=1&api_key=a+key%26%3D&b=2")
	if err := k.Access(c); err != nil || c.Consumer.Name != "alice" {
		t.Fatalf("%v %v", err, c.Consumer)
	}
	if q := c.Request.URL.RawQuery; q != "a=1&b=2" {
		t.Fatalf("query kept the key: %q", q)
	}
	// The header wins over the query and is the one hidden.
	c = request("/x?api_key=bad", "X-Key", "a key&=")
	if err := k.Access(c); err != nil || c.Request.Header.Get("X-Key") != "" || c.Request.URL.RawQuery != "api_key=bad" {
		t.Fatalf("%v %v %q", err, c.Request.Header, c.Request.URL.RawQuery)
	}
	// Without a query setting, a key in the query is not looked at.
	k = build(t, `{}`, env(consumer("alice", "k")))
	if st := status(k.Access(request("/x?apikey=k"))); st != 401 {
		t.Fatalf("query used without config: %d", st)
	}
}

func TestHideCredentialsFalse(t *testing.T) {
	k := build(t, `{"query":"k","hideCredentials":false}`, env(consumer("alice", "a")))
	c := request("/x?k=a")
	if err := k.Access(c); err != nil || c.Request.URL.RawQuery != "k=a" {
		t.Fatalf("%v %q", err, c.Request.URL.RawQuery)
	}
	c = request("/x", "apikey", "a")
	if err := k.Access(c); err != nil || c.Request.Header.Get("apikey") != "a" {
		t.Fatalf("%v %v", err, c.Request.Header)
	}
}

func TestAnonymous(t *testing.T) {
	anon := &plugin.Consumer{Name: "guest", Groups: []string{"public"}}
	k := build(t, `{"anonymous":"guest"}`, env(consumer("alice", "a"), anon))
	c := request("/x")
	if err := k.Access(c); err != nil || c.Consumer != anon ||
		c.Request.Header.Get(HeaderUsername) != "guest" || c.Request.Header.Get(HeaderAnonymous) != "true" {
		t.Fatalf("%v %v %v", err, c.Consumer, c.Request.Header)
	}
	// A wrong key is still refused: anonymous is for requests without a key.
	if st := status(k.Access(request("/x", "apikey", "nope"))); st != 401 {
		t.Fatalf("wrong key with anonymous: %d", st)
	}
}

func TestBuildErrors(t *testing.T) {
	bad := &plugin.Consumer{Name: "bad", Credentials: []plugin.Credential{{Type: CredentialType, Fields: map[string]string{"keyHash": "zz"}}}}
	for name, tc := range map[string]struct {
		cfg  string
		env  *plugin.Env
		want string
	}{
		"hash":      {`{}`, env(bad), `consumer "bad"`},
		"duplicate": {`{}`, env(consumer("a", "k"), consumer("b", "k")), `consumers "a" and "b"`},
		"anonymous": {`{"anonymous":"ghost"}`, env(), "anonymous"},
	} {
		c, err := plugin.DecodeConfig(Name, json.RawMessage(tc.cfg))
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(c.(*Config), tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), hashOf("k")) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, cfg := range []string{`{"header":"bad header"}`, `{"query":"a&b"}`, `{"nope":1}`} {
		if _, err := plugin.DecodeConfig(Name, json.RawMessage(cfg)); err == nil {
			t.Fatalf("%s accepted", cfg)
		}
	}
}

func BenchmarkAccess(b *testing.B) {
	cs := []*plugin.Consumer{consumer("alice", "alice-secret-key")}
	k, err := New(&Config{}, env(cs...))
	if err != nil {
		b.Fatal(err)
	}
	c := request("/x")
	key := []string{"alice-secret-key"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Request.Header["Apikey"] = key
		c.Consumer = nil
		if err := k.Access(c); err != nil {
			b.Fatal(err)
		}
	}
}

package basicauth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"portico.dev/portico/internal/plugin"
)

func bcryptOf(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func argonOf(pw string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	sum := argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

func consumer(name, user, hash string) *plugin.Consumer {
	return &plugin.Consumer{Name: name, Credentials: []plugin.Credential{
		{Type: "key-auth", Fields: map[string]string{"keyHash": "x"}},
		{Type: CredentialType, Fields: map[string]string{"username": user, "passwordHash": hash}},
	}}
}

func env(cs ...*plugin.Consumer) *plugin.Env { return &plugin.Env{Consumers: plugin.NewConsumers(cs)} }

func build(t testing.TB, cfg string, e *plugin.Env) *BasicAuth {
	t.Helper()
	c, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(c.(*Config), e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func request(auth string, hdr ...string) *plugin.Context {
	u, _ := url.Parse("/x")
	r := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return &plugin.Context{Request: r}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func reply(err error) *plugin.Reply {
	var r *plugin.Reply
	if errors.As(err, &r) {
		return r
	}
	return nil
}

func TestBcryptAndArgon2id(t *testing.T) {
	b := build(t, `{}`, env(consumer("alice", "alice", bcryptOf(t, "wonderland")),
		consumer("bob", "bob", argonOf("builder-pw"))))
	for _, tc := range []struct{ user, pass, want string }{
		{"alice", "wonderland", "alice"},
		{"bob", "builder-pw", "bob"},
	} {
		c := request(basic(tc.user, tc.pass), HeaderUsername, "mallory", HeaderAnonymous, "true")
		if err := b.Access(c); err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		h := c.Request.Header
		if c.Consumer.Name != tc.want || h.Get("Authorization") != "" || len(h[HeaderUsername]) != 1 ||
			h[HeaderUsername][0] != tc.want || h[HeaderAnonymous] != nil {
			t.Fatalf("%s: consumer %v headers %v", tc.user, c.Consumer, h)
		}
	}
}

func TestRejections(t *testing.T) {
	b := build(t, `{"realm": "api"}`, env(consumer("alice", "alice", bcryptOf(t, "wonderland")),
		consumer("bob", "bob", argonOf("builder-pw"))))
	for _, tc := range []struct{ auth, msg string }{
		{"", "missing credentials"},
		{"Bearer abc", "missing credentials"},
		{basic("alice", "wrong"), "invalid credentials"},
		{basic("bob", "wrong"), "invalid credentials"},
		{basic("carol", "wonderland"), "invalid credentials"},
		{"Basic !!!", "invalid credentials"},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")), "invalid credentials"},
	} {
		r := reply(b.Access(request(tc.auth)))
		if r == nil || r.Status != 401 || !strings.Contains(string(r.Body), tc.msg) ||
			r.Header.Get("Www-Authenticate") != `Basic realm="api"` {
			t.Errorf("%q: got %+v", tc.auth, r)
		}
	}
}

func TestAnonymousAndHide(t *testing.T) {
	b := build(t, `{"anonymous": "guest", "hideCredentials": false}`,
		env(consumer("alice", "alice", bcryptOf(t, "pw")), &plugin.Consumer{Name: "guest"}))
	c := request("")
	if err := b.Access(c); err != nil || c.Consumer.Name != "guest" || c.Request.Header.Get(HeaderAnonymous) != "true" {
		t.Fatalf("anonymous: %v %v", err, c.Consumer)
	}
	c = request(basic("alice", "pw"))
	if err := b.Access(c); err != nil || c.Request.Header.Get("Authorization") == "" {
		t.Fatalf("hideCredentials false: %v %v", err, c.Request.Header)
	}
	if r := reply(b.Access(request(basic("alice", "nope")))); r == nil || r.Status != 401 {
		t.Fatal("wrong password with anonymous set must still be 401")
	}
}

func TestNewErrors(t *testing.T) {
	h := bcryptOf(t, "pw")
	for name, e := range map[string]*plugin.Env{
		"duplicate":   env(consumer("a", "same", h), consumer("b", "same", h)),
		"bad hash":    env(consumer("a", "a", "plain")),
		"no username": env(consumer("a", "", h)),
	} {
		c, _ := plugin.DecodeConfig(Name, nil)
		if _, err := New(c.(*Config), e); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c, _ := plugin.DecodeConfig(Name, json.RawMessage(`{"anonymous": "ghost"}`))
	if _, err := New(c.(*Config), env()); err == nil {
		t.Error("unknown anonymous accepted")
	}
	if _, err := plugin.DecodeConfig(Name, json.RawMessage(`{"realm": "a\"b"}`)); err == nil {
		t.Error("bad realm accepted")
	}
}

// TestCache: a verified password is not checked against the hash again within the TTL;
// a wrong password never enters the cache; entries expire.
func TestCache(t *testing.T) {
	b := build(t, `{}`, env(consumer("alice", "alice", bcryptOf(t, "pw"))))
	now := time.Unix(1000, 0)
	b.cache.now = func() time.Time { return now }
	calls := 0
	id := b.users["alice"]
	real := id.check
	id.check = countingVerifier{real, &calls}

	for range 3 {
		if err := b.Access(request(basic("alice", "pw"))); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("verified %d times, want 1 (cached)", calls)
	}
	_ = b.Access(request(basic("alice", "bad")))
	_ = b.Access(request(basic("alice", "bad")))
	if calls != 3 {
		t.Fatalf("wrong passwords: %d verifications, want 3 (never cached)", calls)
	}
	now = now.Add(CacheTTL + time.Second)
	_ = b.Access(request(basic("alice", "pw")))
	if calls != 4 {
		t.Fatalf("after TTL: %d verifications, want 4", calls)
	}
}

type countingVerifier struct {
	v verifier
	n *int
}

func (c countingVerifier) verify(pw []byte) bool { *c.n++; return c.v.verify(pw) }

func TestCacheBounded(t *testing.T) {
	vc := newVerifyCache(3, time.Minute)
	for i := range 10 {
		vc.add(fmt.Sprint(i))
	}
	if len(vc.m) > 3 {
		t.Fatalf("cache holds %d entries, bound 3", len(vc.m))
	}
	if !vc.hit("9") {
		t.Fatal("latest entry missing")
	}
}

// BenchmarkCached is the per-request cost once a password has been verified.
func BenchmarkCached(b *testing.B) {
	p := build(b, `{}`, env(consumer("alice", "alice", bcryptOf(b, "pw"))))
	auth := basic("alice", "pw")
	c := request(auth)
	b.ReportAllocs()
	for b.Loop() {
		c.Request.Header.Set("Authorization", auth)
		if err := p.Access(c); err != nil {
			b.Fatal(err)
		}
	}
}

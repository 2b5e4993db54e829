package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"portico.dev/portico/internal/plugin"
)

const hsSecret = "0123456789abcdef0123456789abcdef-hs"

// Test keys, generated once per process.
var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	ecKey  = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })
	edKey  = sync.OnceValue(func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k })
)

func pemOf(t testing.TB, pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(iss string, extra ...any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": iss, "sub": "user-1", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

func cred(name, key string, fields ...string) *plugin.Consumer {
	f := map[string]string{"key": key}
	for i := 0; i+1 < len(fields); i += 2 {
		f[fields[i]] = fields[i+1]
	}
	return &plugin.Consumer{Name: name, Credentials: []plugin.Credential{
		{Type: "basic-auth", Fields: map[string]string{"username": "x"}},
		{Type: CredentialType, Fields: f},
	}}
}

func env(cs ...*plugin.Consumer) *plugin.Env { return &plugin.Env{Consumers: plugin.NewConsumers(cs)} }

func build(t testing.TB, cfg string, e *plugin.Env) *JWTAuth {
	t.Helper()
	c, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(c.(*Config), e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func request(target string, hdr ...string) *plugin.Context {
	u, _ := url.Parse(target)
	r := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return &plugin.Context{Request: r}
}

func bearer(tok string) *plugin.Context { return request("/x", "Authorization", "Bearer "+tok) }

// check runs Access and returns "" on success (with the consumer's name in who) or the
// reply's message.
func check(a *JWTAuth, c *plugin.Context) (who, msg string) {
	err := a.Access(c)
	var r *plugin.Reply
	if errors.As(err, &r) {
		var body struct{ Error struct{ Message string } }
		_ = json.Unmarshal(r.Body, &body)
		return "", body.Error.Message
	}
	if err != nil {
		return "", err.Error()
	}
	if c.Consumer == nil {
		return "<none>", ""
	}
	return c.Consumer.Name, ""
}

func allKeysEnv(t testing.TB) *plugin.Env {
	return env(
		cred("hs", "hs-issuer", "secret", hsSecret),
		cred("rsa", "rsa-issuer", "publicKey", pemOf(t, &rsaKey().PublicKey)),
		cred("ec", "ec-issuer", "publicKey", pemOf(t, &ecKey().PublicKey)),
		cred("ed", "ed-issuer", "publicKey", pemOf(t, edKey().Public())),
	)
}

func TestAlgorithms(t *testing.T) {
	a := build(t, `{}`, allKeysEnv(t))
	for _, tc := range []struct {
		method jwt.SigningMethod
		key    any
		iss    string
	}{
		{jwt.SigningMethodHS256, []byte(hsSecret), "hs-issuer"},
		{jwt.SigningMethodHS384, []byte(hsSecret), "hs-issuer"},
		{jwt.SigningMethodHS512, []byte(hsSecret), "hs-issuer"},
		{jwt.SigningMethodRS256, rsaKey(), "rsa-issuer"},
		{jwt.SigningMethodPS256, rsaKey(), "rsa-issuer"},
		{jwt.SigningMethodES256, ecKey(), "ec-issuer"},
		{jwt.SigningMethodEdDSA, edKey(), "ed-issuer"},
	} {
		c := bearer(sign(t, tc.method, tc.key, "", claims(tc.iss)))
		c.Request.Header.Set(HeaderUsername, "mallory")
		who, msg := check(a, c)
		want := strings.TrimSuffix(tc.iss, "-issuer")
		if who != want || c.Request.Header.Get("Authorization") != "" || c.Request.Header.Get(HeaderUsername) != want {
			t.Errorf("%s: got %q %q headers %v", tc.method.Alg(), who, msg, c.Request.Header)
		}
	}
}

func TestRejected(t *testing.T) {
	a := build(t, `{"issuer": "hs-issuer", "audiences": ["api", "web"]}`, allKeysEnv(t))
	now := time.Now()
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(hsSecret), "", c) }
	rsaPEM := []byte(pemOf(t, &rsaKey().PublicKey))
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	for name, tc := range map[string]struct{ tok, msg string }{
		"ok aud":            {hs(claims("hs-issuer", "aud", "web")), ""},
		"exp within skew":   {hs(claims("hs-issuer", "aud", "api", "exp", now.Add(-10*time.Second).Unix())), ""},
		"expired":           {hs(claims("hs-issuer", "aud", "api", "exp", now.Add(-time.Minute).Unix())), "token expired"},
		"nbf within skew":   {hs(claims("hs-issuer", "aud", "api", "nbf", now.Add(20*time.Second).Unix())), ""},
		"nbf future":        {hs(claims("hs-issuer", "aud", "api", "nbf", now.Add(time.Minute).Unix())), "invalid token"},
		"iat future":        {hs(claims("hs-issuer", "aud", "api", "iat", now.Add(time.Hour).Unix())), "invalid token"},
		"wrong aud":         {hs(claims("hs-issuer", "aud", "other")), "invalid token"},
		"no aud":            {hs(claims("hs-issuer")), "invalid token"},
		"wrong iss":         {sign(t, jwt.SigningMethodRS256, rsaKey(), "", claims("rsa-issuer", "aud", "api")), "invalid token"},
		"wrong secret":      {sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-length!!"), "", claims("hs-issuer", "aud", "api")), "invalid token"},
		"garbage":           {"a.b.c", "invalid token"},
		"alg none":          {sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims("hs-issuer", "aud", "api")), "invalid token"},
		"confusion PEM":     {sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims("rsa-issuer", "aud", "api")), "invalid token"},
		"confusion DER":     {sign(t, jwt.SigningMethodHS256, rsaDER, "", claims("rsa-issuer", "aud", "api")), "invalid token"},
		"unknown consumer":  {hs(claims("nobody", "aud", "api")), "invalid token"},
		"ES on RSA key":     {sign(t, jwt.SigningMethodES256, ecKey(), "", claims("rsa-issuer", "aud", "api")), "invalid token"},
		"missing (no auth)": {"", "missing token"},
	} {
		c := request("/x")
		if tc.tok != "" {
			c = bearer(tc.tok)
		}
		who, msg := check(a, c)
		if msg != tc.msg || (tc.msg == "" && who != "hs") {
			t.Errorf("%s: got %q %q, want message %q", name, who, msg, tc.msg)
		}
	}
}

// TestConfusionWithoutIssuerCheck: even with no iss check, a token signed with HMAC
// over the RSA consumer's public key is refused (the RSA key is never an HMAC key).
func TestConfusionWithoutIssuerCheck(t *testing.T) {
	a := build(t, `{}`, allKeysEnv(t))
	tok := sign(t, jwt.SigningMethodHS256, []byte(pemOf(t, &rsaKey().PublicKey)), "", claims("rsa-issuer"))
	if _, msg := check(a, bearer(tok)); msg != "invalid token" {
		t.Fatalf("alg confusion accepted: %q", msg)
	}
}

func TestAllowedAlgorithms(t *testing.T) {
	a := build(t, `{"algorithms": ["RS256"]}`, allKeysEnv(t))
	if _, msg := check(a, bearer(sign(t, jwt.SigningMethodHS256, []byte(hsSecret), "", claims("hs-issuer")))); msg == "" {
		t.Fatal("HS256 accepted though only RS256 is allowed")
	}
	if who, _ := check(a, bearer(sign(t, jwt.SigningMethodRS256, rsaKey(), "", claims("rsa-issuer")))); who != "rsa" {
		t.Fatal("RS256 refused")
	}
}

func TestSourcesAndClaimsToHeaders(t *testing.T) {
	a := build(t, `{"header": "X-Token", "query": "jwt", "cookie": "session", "consumerClaim": "client",
		"claimsToHeaders": {"sub": "X-User", "roles": "X-Roles", "level": "X-Level"}}`,
		env(cred("hs", "hs-client", "secret", hsSecret)))
	tok := sign(t, jwt.SigningMethodHS256, []byte(hsSecret), "",
		claims("whoever", "client", "hs-client", "roles", []any{"admin", "ops"}, "level", 3))

	for name, c := range map[string]*plugin.Context{
		"header bare":   request("/x", "X-Token", tok, "X-User", "forged"),
		"header bearer": request("/x", "X-Token", "Bearer "+tok, "X-User", "forged"),
		"query":         request("/x?a=1&jwt="+tok+"&b=2", "X-User", "forged"),
		"cookie":        request("/x", "Cookie", "a=1; session="+tok, "X-User", "forged"),
	} {
		who, msg := check(a, c)
		h := c.Request.Header
		if who != "hs" || h.Get("X-User") != "user-1" || len(h["X-User"]) != 1 ||
			h.Get("X-Roles") != "admin, ops" || h.Get("X-Level") != "3" {
			t.Errorf("%s: %q %q headers %v", name, who, msg, h)
		}
		if q := c.Request.URL.RawQuery; name == "query" && q != "a=1&b=2" {
			t.Errorf("query after removal: %q", q)
		}
		if h.Get("X-Token") != "" || strings.Contains(c.Request.URL.RawQuery, "jwt=") ||
			strings.Contains(h.Get("Cookie"), "session=") || !strings.Contains(h.Get("Cookie")+c.Request.URL.RawQuery+"a=1", "a=1") {
			t.Errorf("%s: token not hidden: %v %q", name, h, c.Request.URL.RawQuery)
		}
	}
	// The default Authorization header needs the Bearer scheme.
	b := build(t, `{}`, env(cred("hs", "hs-issuer", "secret", hsSecret)))
	if _, msg := check(b, request("/x", "Authorization", sign(t, jwt.SigningMethodHS256, []byte(hsSecret), "", claims("hs-issuer")))); msg != "missing token" {
		t.Errorf("bare token in Authorization: %q", msg)
	}
}

func TestAnonymous(t *testing.T) {
	a := build(t, `{"anonymous": "guest"}`, env(cred("hs", "hs-issuer", "secret", hsSecret), &plugin.Consumer{Name: "guest"}))
	c := request("/x")
	if who, _ := check(a, c); who != "guest" || c.Request.Header.Get(HeaderAnonymous) != "true" {
		t.Fatalf("no token: %q", who)
	}
	if _, msg := check(a, bearer("bad.token.here")); msg != "invalid token" {
		t.Fatalf("invalid token with anonymous: %q", msg)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []string{
		`{"algorithms": ["none"]}`, `{"clockSkew": "1h"}`, `{"jwksRefresh": "1s"}`,
		`{"jwksURL": "ftp://x"}`, `{"oidcIssuer": "relative"}`, `{"claimsToHeaders": {"sub": "bad header"}}`,
		`{"header": "a b"}`, `{"unknown": 1}`,
	} {
		if _, err := plugin.DecodeConfig(Name, json.RawMessage(cfg)); err == nil {
			t.Errorf("%s accepted", cfg)
		}
	}
	c, _ := plugin.DecodeConfig(Name, nil)
	for name, e := range map[string]*plugin.Env{
		"duplicate": env(cred("a", "k", "secret", hsSecret), cred("b", "k", "secret", hsSecret)),
		"bad pem":   env(cred("a", "k", "publicKey", "not pem")),
	} {
		if _, err := New(c.(*Config), e); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func BenchmarkHS256(b *testing.B) {
	a := build(b, `{}`, env(cred("hs", "hs-issuer", "secret", hsSecret)))
	benchVerify(b, a, sign(b, jwt.SigningMethodHS256, []byte(hsSecret), "", claims("hs-issuer")))
}

func BenchmarkRS256(b *testing.B) {
	a := build(b, `{}`, env(cred("rsa", "rsa-issuer", "publicKey", pemOf(b, &rsaKey().PublicKey))))
	benchVerify(b, a, sign(b, jwt.SigningMethodRS256, rsaKey(), "", claims("rsa-issuer")))
}

func benchVerify(b *testing.B, a *JWTAuth, tok string) {
	c := bearer(tok)
	auth := "Bearer " + tok
	b.ReportAllocs()
	for b.Loop() {
		c.Request.Header.Set("Authorization", auth)
		if err := a.Access(c); err != nil {
			b.Fatal(err)
		}
	}
}

package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"portico.dev/portico/internal/plugin"
)

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf renders a public key as a JWK.
func jwkOf(kid string, pub any) map[string]string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, _ := k.Bytes() // 0x04 || x || y
		n := (len(raw) - 1) / 2
		return map[string]string{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name, "x": enc(raw[1 : 1+n]), "y": enc(raw[1+n:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k)}
	}
	panic("unknown key")
}

// keyServer serves a JWK set (and an OIDC discovery document) on 127.0.0.1; the set
// can be replaced and the server made to fail.
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	failing bool
	fetches atomic.Int32
}

func newKeyServer(t *testing.T, keys ...map[string]string) *keyServer {
	ks := &keyServer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		if ks.failing {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": ks.keys})
	})
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": ks.URL, "jwks_uri": ks.URL + "/jwks"})
	})
	ks.Server = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(keys ...map[string]string) {
	ks.mu.Lock()
	ks.keys = keys
	ks.mu.Unlock()
}

func waitKeys(t *testing.T, a *JWTAuth) {
	t.Helper()
	for range 200 {
		a.jwks.mu.RLock()
		n := len(a.jwks.keys)
		a.jwks.mu.RUnlock()
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("JWK set never loaded")
}

func TestJWKSRotation(t *testing.T) {
	ec2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ks := newKeyServer(t, jwkOf("r1", &rsaKey().PublicKey))
	a := build(t, `{"jwksURL": "`+ks.URL+`/jwks", "consumerClaim": "azp"}`,
		env(cred("web", "web-app"), &plugin.Consumer{Name: "guest"}))
	waitKeys(t, a)
	a.jwks.minForced = 0

	c := bearer(sign(t, jwt.SigningMethodRS256, rsaKey(), "r1", claims("idp", "azp", "web-app")))
	if who, msg := check(a, c); who != "web" {
		t.Fatalf("r1: %q %q", who, msg)
	}
	// A token without kid is tried against every key of the set.
	if who, msg := check(a, bearer(sign(t, jwt.SigningMethodRS256, rsaKey(), "", claims("idp", "azp", "web-app")))); who != "web" {
		t.Fatalf("no kid: %q %q", who, msg)
	}
	// Rotation: a new kid appears on the server and is fetched on first sight.
	ks.set(jwkOf("r1", &rsaKey().PublicKey), jwkOf("e2", &ec2.PublicKey), jwkOf("d3", edKey().Public()))
	tok := sign(t, jwt.SigningMethodES384, ec2, "e2", claims("idp", "azp", "web-app"))
	if who, msg := check(a, bearer(tok)); who != "web" {
		t.Fatalf("rotated key e2: %q %q", who, msg)
	}
	if who, msg := check(a, bearer(sign(t, jwt.SigningMethodEdDSA, edKey(), "d3", claims("idp", "azp", "web-app")))); who != "web" {
		t.Fatalf("rotated key d3: %q %q", who, msg)
	}
	// A token valid for the set but naming no consumer: 401 without anonymous.
	if _, msg := check(a, bearer(sign(t, jwt.SigningMethodRS256, rsaKey(), "r1", claims("idp")))); msg != "token matches no consumer" {
		t.Fatalf("no consumer: %q", msg)
	}
	// Server down: the last good set is kept.
	ks.mu.Lock()
	ks.failing = true
	ks.mu.Unlock()
	a.jwks.refresh(false)
	if who, msg := check(a, bearer(tok)); who != "web" {
		t.Fatalf("after failed fetch: %q %q", who, msg)
	}
	// HMAC with a JWKS key's material is never accepted.
	if _, msg := check(a, bearer(sign(t, jwt.SigningMethodHS256, rsaKey().PublicKey.N.Bytes(), "r1", claims("idp", "azp", "web-app")))); msg != "invalid token" {
		t.Fatalf("HS256 with kid r1: %q", msg)
	}
}

// TestJWKSUnknownKidRateLimited: made-up kids do not each cause a fetch.
func TestJWKSUnknownKidRateLimited(t *testing.T) {
	ks := newKeyServer(t, jwkOf("r1", &rsaKey().PublicKey))
	a := build(t, `{"jwksURL": "`+ks.URL+`/jwks", "anonymous": "guest"}`, env(&plugin.Consumer{Name: "guest"}))
	waitKeys(t, a)
	before := ks.fetches.Load()
	for range 20 {
		if _, msg := check(a, bearer(sign(t, jwt.SigningMethodRS256, rsaKey(), "nope", claims("idp")))); msg != "invalid token" {
			t.Fatalf("unknown kid: %q", msg)
		}
	}
	if n := ks.fetches.Load() - before; n > 1 {
		t.Fatalf("%d fetches for unknown kids, want at most 1", n)
	}
	// Valid set token, no consumer claim match: the anonymous consumer.
	c := bearer(sign(t, jwt.SigningMethodRS256, rsaKey(), "r1", claims("idp")))
	if who, _ := check(a, c); who != "guest" || c.Request.Header.Get(HeaderAnonymous) != "true" {
		t.Fatalf("anonymous for set token: %q", who)
	}
}

func TestOIDCDiscovery(t *testing.T) {
	ks := newKeyServer(t, jwkOf("k1", &ecKey().PublicKey))
	a := build(t, `{"oidcIssuer": "`+ks.URL+`/", "audiences": ["api"], "consumerClaim": "sub",
		"claimsToHeaders": {"email": "X-Email"}}`, env(cred("app", "user-1")))
	waitKeys(t, a)
	c := bearer(sign(t, jwt.SigningMethodES256, ecKey(), "k1", claims(ks.URL, "aud", "api", "email", "a@example.com")))
	c.Request.Header.Set("X-Email", "forged@example.com")
	if who, msg := check(a, c); who != "app" || c.Request.Header.Get("X-Email") != "a@example.com" {
		t.Fatalf("discovered: %q %q %v", who, msg, c.Request.Header)
	}
	// The issuer defaults to oidcIssuer.
	if _, msg := check(a, bearer(sign(t, jwt.SigningMethodES256, ecKey(), "k1", claims("https://evil", "aud", "api")))); msg != "invalid token" {
		t.Fatalf("foreign issuer: %q", msg)
	}
}

func TestParseJWKSSkipsBadKeys(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	doc, _ := json.Marshal(map[string]any{"keys": []any{
		jwkOf("weak", &small.PublicKey),
		map[string]string{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
		map[string]string{"kty": "EC", "kid": "bad", "crv": "P-256", "x": "AA", "y": "AA"},
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
		jwkOf("good", edKey().Public()),
	}})
	keys, err := parseJWKS(doc)
	if err != nil || len(keys) != 1 || keys[0].kid != "good" {
		t.Fatalf("keys %v err %v", keys, err)
	}
	if _, err := parseJWKS([]byte(`{"keys": []}`)); err == nil {
		t.Fatal("empty set accepted")
	}
}

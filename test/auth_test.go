package test

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy"
)

// TestBasicAndJWTAuthEndToEnd sends real requests through the data plane to routes
// protected by basic-auth and jwt-auth.
func TestBasicAndJWTAuthEndToEnd(t *testing.T) {
	const secret = "end-to-end-hmac-secret-0123456789"
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	consumers := []ir.Consumer{{Name: "alice", Credentials: []ir.Credential{
		{Type: "basic-auth", Fields: map[string]string{"username": "alice", "passwordHash": string(hash)}},
		{Type: "jwt-auth", Fields: map[string]string{"key": "alice-issuer", "secret": secret}},
	}}}
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	rt := proxy.New(proxy.Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	snap := pluginSnapshot(port, backend, consumers,
		pluginRoute("basic", "/basic", pluginSpec("basic-auth", `{"realm":"e2e"}`)),
		pluginRoute("jwt", "/jwt", pluginSpec("jwt-auth", `{"claimsToHeaders":{"sub":"X-User"}}`)),
		pluginRoute("open", "/"))
	if err := rt.Apply(snap); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/open", 200)

	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	a := call(t, base+"/basic", "Authorization", good)
	if a.status != 200 || a.echo.Headers["Authorization"] != nil || a.echo.Headers["X-Consumer-Username"][0] != "alice" {
		t.Fatalf("basic: %d %v", a.status, a.echo.Headers)
	}
	if a = call(t, base+"/basic"); a.status != 401 || a.header.Get("WWW-Authenticate") != `Basic realm="e2e"` {
		t.Fatalf("basic missing: %d %v", a.status, a.header)
	}
	bad := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong"))
	if a = call(t, base+"/basic", "Authorization", bad); a.status != 401 {
		t.Fatalf("basic wrong: %d", a.status)
	}

	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "alice-issuer", "sub": "user-42", "exp": time.Now().Add(time.Minute).Unix()}).SignedString([]byte(secret))
	a = call(t, base+"/jwt", "Authorization", "Bearer "+tok, "X-User", "forged")
	if a.status != 200 || a.echo.Headers["X-User"][0] != "user-42" || len(a.echo.Headers["X-User"]) != 1 ||
		a.echo.Headers["X-Consumer-Username"][0] != "alice" {
		t.Fatalf("jwt: %d %v", a.status, a.echo.Headers)
	}
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "alice-issuer", "exp": time.Now().Add(-time.Hour).Unix()}).SignedString([]byte(secret))
	if a = call(t, base+"/jwt", "Authorization", "Bearer "+expired); a.status != 401 || errorOf(t, a) != "unauthorized: token expired" {
		t.Fatalf("jwt expired: %d %s", a.status, a.body)
	}
}

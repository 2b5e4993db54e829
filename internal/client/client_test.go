package client

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestAPIErrorMessage(t *testing.T) {
	body := `{"error":{"code":"invalid","message":"must be one of Exact, PathPrefix","field":"spec.matches[0].path.type","object":"Route/x",
	  "details":[{"object":"Route/x","field":"spec.matches[0].path.type","message":"must be one of Exact, PathPrefix"},
	             {"object":"Upstream/u","field":"spec.endpoints[0].address","message":"missing port"}]}}`
	err := decodeError(400, []byte(body))
	want := "400 invalid: Route/x: spec.matches[0].path.type: must be one of Exact, PathPrefix\n  Upstream/u: spec.endpoints[0].address: missing port"
	if err.Error() != want {
		t.Fatalf("got\n%s\nwant\n%s", err, want)
	}
	if !IsCode(fmt.Errorf("wrapped: %w", err), "invalid") || IsCode(err, "not_found") {
		t.Fatal("IsCode")
	}

	plain := decodeError(502, []byte("<html>bad gateway</html>"))
	if plain.Error() != "502 http_error: unexpected response: <html>bad gateway</html>" {
		t.Fatal(plain)
	}
	if got := decodeError(404, nil).Error(); got != "404 not_found: unexpected response: (empty response)" {
		t.Fatal(got)
	}
}

// TestClientTLSAndToken runs a real TLS server: the client trusts it only through
// caFile, sends the bearer token, and explains a 401.
func TestClientTLSAndToken(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"invalid bearer token"}}`)
			return
		}
		if r.URL.Path != "/api/v1/routes" || r.URL.Query().Get("namespace") != "*" {
			w.WriteHeader(404)
			fmt.Fprintf(w, `{"error":{"code":"not_found","message":"unexpected %s"}}`, r.URL)
			return
		}
		fmt.Fprint(w, `{"apiVersion":"portico.dev/v1alpha1","kind":"List","metadata":{"resourceVersion":"7"},"items":[{"kind":"Route"}]}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	ctx := context.Background()

	// Without the CA the server is not trusted.
	c, err := New(&Config{Server: srv.URL, Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(ctx, "routes", "*"); err == nil || !strings.Contains(err.Error(), "caFile") {
		t.Fatalf("untrusted server: %v", err)
	}

	c, err = New(&Config{Server: srv.URL, Token: "s3cret", CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx, "Route", "*")
	if err != nil {
		t.Fatal(err)
	}
	if list.ResourceVersion != "7" || len(list.Items) != 1 {
		t.Fatalf("list: %+v", list)
	}

	c, _ = New(&Config{Server: srv.URL, Token: "wrong", TokenSource: EnvToken, CAFile: caFile})
	_, err = c.List(ctx, "routes", "*")
	if err == nil || err.Error() != "401 unauthorized: invalid bearer token\n  hint: the token from PORTICO_TOKEN was refused" {
		t.Fatalf("wrong token: %v", err)
	}
	c, _ = New(&Config{Server: srv.URL, CAFile: caFile})
	if _, err = c.List(ctx, "routes", "*"); err == nil || !strings.Contains(err.Error(), "no token was sent") {
		t.Fatalf("no token: %v", err)
	}
	if _, err := New(&Config{Server: srv.URL, CAFile: filepath.Join(dir, "missing.crt")}); err == nil {
		t.Fatal("missing caFile accepted")
	}
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := New(&Config{Server: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "route", "", "x")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the admin API at http://"+addr) {
		t.Fatalf("got %v", err)
	}
	if _, err := c.Get(context.Background(), "widget", "", "x"); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("unknown kind: %v", err)
	}
}

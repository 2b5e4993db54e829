package admin

import (
	"portico.dev/portico/internal/testsupport/pgtest"

	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "portico.dev/portico/internal/plugins/all" // dry runs check plugin configs
	"portico.dev/portico/internal/store"
)

const adminToken = "bootstrap-admin-secret"

// harness is an admin API over a real store, served on loopback.
type harness struct {
	t   *testing.T
	st  store.Store
	srv *httptest.Server
}

func sqliteDSN(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "portico.db") }

// postgresDSN is a fresh schema on the test server.
func postgresDSN(t *testing.T) string { return pgtest.SchemaDSN(t, "portico_admin_test") }

func openStore(t *testing.T, dsn string) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := store.Migrate(ctx, st); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

func newHarness(t *testing.T, dsn string, mod func(*Options)) *harness {
	t.Helper()
	st := openStore(t, dsn)
	opts := Options{Store: st, AdminToken: adminToken, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if mod != nil {
		mod(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &harness{t: t, st: st, srv: srv}
}

// reply is a decoded response.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// errCode, errField, errObject and errMessage read the error envelope.
func (r reply) err(field string) string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e[field].(string)
	return s
}

func (r reply) details() []any {
	e, _ := r.body["error"].(map[string]any)
	d, _ := e["details"].([]any)
	return d
}

// do sends a request; a string or []byte body goes as is with ctype, anything else as JSON.
func (h *harness) do(method, path, token, ctype string, body any) reply {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
		if ctype == "" {
			ctype = "application/json"
		}
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// want fails the test unless the reply has status.
func (h *harness) want(r reply, status int, what string) reply {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.raw)
	}
	return r
}

func (h *harness) revision() int64 {
	h.t.Helper()
	rev, err := h.st.Revision(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return rev
}

// unchanged fails when the store revision moved since rev.
func (h *harness) unchanged(rev int64, what string) {
	h.t.Helper()
	if now := h.revision(); now != rev {
		h.t.Errorf("%s: store revision moved from %d to %d", what, rev, now)
	}
}

// token creates an API token through the API and returns its secret.
func (h *harness) token(name, role string, gateways, namespaces []string) string {
	h.t.Helper()
	r := h.want(h.do("POST", "/api/v1/tokens", adminToken, "", map[string]any{
		"name": name, "role": role, "gateways": gateways, "namespaces": namespaces}), 201, "create token "+name)
	s, _ := r.body["secret"].(string)
	if s == "" {
		h.t.Fatalf("no secret in %s", r.raw)
	}
	return s
}

func str(v any, path ...string) string {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return ""
}

// selfSigned returns a PEM certificate and key for host.
func selfSigned(t *testing.T, host string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// doHeader sends a request with a raw Authorization header.
func (h *harness) doHeader(method, path, auth string) reply {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, nil)
	req.Header.Set("Authorization", auth)
	return h.send(req)
}

// doChunked sends a body without a Content-Length, as the admin token.
func (h *harness) doChunked(method, path, ctype, body string) reply {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, io.NopCloser(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", ctype)
	return h.send(req)
}

func (h *harness) send(req *http.Request) reply {
	h.t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

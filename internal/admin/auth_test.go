package admin

import (
	"portico.dev/portico/internal/testsupport/pgtest"

	"context"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/store"
)

func TestAuthentication(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	rev := h.revision()
	for _, c := range []struct{ name, header string }{
		{"no token", ""}, {"wrong token", "Bearer nope"}, {"wrong scheme", "Basic " + adminToken},
	} {
		req := h.do("GET", "/api/v1/routes", "", "", nil)
		if c.header != "" {
			req = h.doHeader("GET", "/api/v1/routes", c.header)
		}
		if req.status != 401 || req.err("code") != CodeUnauthorized || req.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s", c.name, req.status, req.raw)
		}
	}
	r := h.want(h.do("PUT", "/api/v1/upstreams/u", "wrong", "", obj("Upstream", "u", map[string]any{})), 401, "write with a wrong token")
	if r.err("code") != CodeUnauthorized {
		t.Errorf("write with a wrong token: %s", r.raw)
	}
	h.unchanged(rev, "unauthenticated requests")
	// Public endpoints need no token.
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.json"} {
		h.want(h.do("GET", p, "", "", nil), 200, p)
	}
	// An expired stored token is refused.
	secret := "expired-secret"
	if err := h.st.PutToken(context.Background(), store.Token{Name: "old", Role: RoleAdmin, SecretHash: store.HashSecret(secret), Expires: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	r = h.want(h.do("GET", "/api/v1/routes", secret, "", nil), 401, "expired token")
	if !strings.Contains(r.err("message"), "expired") {
		t.Errorf("expired token: %s", r.raw)
	}
}

func TestRolesAndScopes(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	cert, key := selfSigned(t, "site.example")
	setup := baseYAML + `
---
apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: edge}
spec:
  listeners: [{name: http, port: 8081, protocol: HTTP}]
---
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: alice, namespace: a}
spec:
  credentials: [{type: key-auth, key: alice-secret-key}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: up, namespace: b}
spec: {endpoints: [{address: "127.0.0.1:1"}]}
`
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", setup), 200, "setup")
	certObj := obj("Certificate", "site", map[string]any{"cert": cert, "key": key})
	h.want(h.do("PUT", "/api/v1/certificates/site", adminToken, "", certObj), 201, "certificate")

	viewer := h.token("view", "viewer", nil, nil)
	edA := h.token("ed-a", "editor", nil, []string{"a"})
	edGW := h.token("ed-edge", "editor", []string{"edge"}, nil)
	rev := h.revision()

	// Viewers read, never write.
	h.want(h.do("GET", "/api/v1/routes/web", viewer, "", nil), 200, "viewer read")
	r := h.want(h.do("PUT", "/api/v1/upstreams/echo", viewer, "", obj("Upstream", "echo", map[string]any{})), 403, "viewer write")
	if !strings.Contains(r.err("message"), "viewer") {
		t.Errorf("viewer write: %s", r.raw)
	}
	h.want(h.do("POST", "/api/v1/apply", viewer, "application/yaml", baseYAML), 403, "viewer apply")
	h.want(h.do("DELETE", "/api/v1/routes/web", viewer, "", nil), 403, "viewer delete")
	h.want(h.do("GET", "/api/v1/tokens", viewer, "", nil), 403, "viewer tokens")

	// Namespace scope.
	up := obj("Upstream", "x", map[string]any{"endpoints": []any{map[string]any{"address": "127.0.0.1:1"}}})
	up["metadata"].(map[string]any)["namespace"] = "b"
	r = h.want(h.do("PUT", "/api/v1/upstreams/x?namespace=b", edA, "", up), 403, "editor a writes b")
	if !strings.Contains(r.err("message"), `namespace "b"`) || r.err("object") != "Upstream/b/x" {
		t.Errorf("out-of-namespace write: %s", r.raw)
	}
	h.want(h.do("GET", "/api/v1/upstreams?namespace=b", edA, "", nil), 403, "editor a lists b")
	h.want(h.do("GET", "/api/v1/upstreams/up?namespace=b", edA, "", nil), 403, "editor a reads b")
	h.want(h.do("DELETE", "/api/v1/upstreams/up?namespace=b", edA, "", nil), 403, "editor a deletes in b")
	// Apply with one object out of scope stores nothing.
	mixed := "apiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: ok, namespace: a}\nspec: {endpoints: [{address: \"127.0.0.1:1\"}]}\n---\n" +
		"apiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: no, namespace: b}\nspec: {endpoints: [{address: \"127.0.0.1:1\"}]}\n"
	h.want(h.do("POST", "/api/v1/apply", edA, "application/yaml", mixed), 403, "apply across namespaces")
	all := h.want(h.do("GET", "/api/v1/upstreams?namespace=*", edA, "", nil), 200, "editor a lists all")
	if items, _ := all.body["items"].([]any); len(items) != 0 {
		t.Errorf("editor a sees other namespaces: %s", all.raw)
	}

	// Gateway scope: a route may not attach to another gateway, nor to the default one.
	rt := obj("Route", "r2", map[string]any{"gateways": []string{"edge", "default"}, "backends": []any{map[string]any{"upstream": "echo"}}})
	r = h.want(h.do("PUT", "/api/v1/routes/r2", edGW, "", rt), 403, "route on another gateway")
	if r.err("field") != "spec.gateways[1]" || !strings.Contains(r.err("message"), `gateway "default"`) {
		t.Errorf("gateway scope: %s", r.raw)
	}
	h.want(h.do("PUT", "/api/v1/routes/web", edGW, "", obj("Route", "web", map[string]any{"gateways": []string{"edge"}, "backends": []any{map[string]any{"upstream": "echo"}}})), 403,
		"moving a route from another gateway")
	h.want(h.do("PUT", "/api/v1/gateways/default", edGW, "", obj("Gateway", "default", map[string]any{"listeners": []any{map[string]any{"name": "h", "port": 1, "protocol": "HTTP"}}})), 403, "another gateway")
	glob := obj("Plugin", "g", map[string]any{"plugin": "request-id"})
	h.want(h.do("PUT", "/api/v1/plugins/g", edGW, "", glob), 403, "global plugin")
	h.unchanged(rev, "denied writes")
	rt["spec"].(map[string]any)["gateways"] = []string{"edge"}
	h.want(h.do("PUT", "/api/v1/routes/r2", edGW, "", rt), 201, "route on its own gateway")
	list := h.want(h.do("GET", "/api/v1/routes", edGW, "", nil), 200, "gateway-scoped list")
	if items, _ := list.body["items"].([]any); len(items) != 1 || str(items[0], "metadata", "name") != "r2" {
		t.Errorf("gateway-scoped list: %s", list.raw)
	}

	// Secrets: consumer keys for admins (and editors), redacted for viewers; private
	// keys for admins only.
	for _, c := range []struct {
		token, path, field string
		hidden             bool
	}{
		{adminToken, "/api/v1/consumers/alice?namespace=a", "alice-secret-key", false},
		{edA, "/api/v1/consumers/alice?namespace=a", "alice-secret-key", false},
		{viewer, "/api/v1/consumers/alice?namespace=a", "alice-secret-key", true},
		{adminToken, "/api/v1/certificates/site", "PRIVATE KEY", false},
		{edGW, "/api/v1/certificates/site", "PRIVATE KEY", true},
		{viewer, "/api/v1/certificates/site", "PRIVATE KEY", true},
	} {
		r := h.want(h.do("GET", c.path, c.token, "", nil), 200, c.path)
		if strings.Contains(string(r.raw), c.field) == c.hidden || (c.hidden && !strings.Contains(string(r.raw), redacted)) {
			t.Errorf("%s as %s: hidden=%v, got %s", c.path, c.token[:4], c.hidden, r.raw)
		}
	}
	// Viewers' lists are redacted too.
	l := h.want(h.do("GET", "/api/v1/consumers?namespace=*", viewer, "", nil), 200, "viewer consumer list")
	if strings.Contains(string(l.raw), "alice-secret-key") {
		t.Errorf("viewer list shows a key: %s", l.raw)
	}
}

func TestTokensAPI(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	secret := h.token("ci", "editor", []string{"edge"}, []string{"a"})
	h.want(h.do("GET", "/api/v1/routes?namespace=a", secret, "", nil), 200, "new token works")
	h.want(h.do("GET", "/api/v1/routes", secret, "", nil), 403, "outside the token's namespaces")
	list := h.want(h.do("GET", "/api/v1/tokens", adminToken, "", nil), 200, "list tokens")
	if strings.Contains(string(list.raw), secret) || !strings.Contains(string(list.raw), `"ci"`) || strings.Contains(string(list.raw), store.HashSecret(secret)) {
		t.Errorf("token list shows a secret or hash, or lacks the token: %s", list.raw)
	}
	h.want(h.do("POST", "/api/v1/tokens", adminToken, "", map[string]any{"name": "ci", "role": "viewer"}), 409, "duplicate token")
	for _, bad := range []map[string]any{
		{"name": "admin", "role": "viewer"}, {"name": "x", "role": "root"}, {"name": "Bad Name", "role": "viewer"},
		{"name": "y", "role": "viewer", "ttl": "soon"}, {"name": "z", "role": "viewer", "extra": true},
	} {
		h.want(h.do("POST", "/api/v1/tokens", adminToken, "", bad), 400, "bad token request")
	}
	h.want(h.do("POST", "/api/v1/tokens", secret, "", map[string]any{"name": "mine", "role": "admin"}), 403, "editor creates a token")
	ttl := h.want(h.do("POST", "/api/v1/tokens", adminToken, "", map[string]any{"name": "short", "role": "viewer", "ttl": "1h"}), 201, "ttl token")
	if str(ttl.body, "expires") == "" {
		t.Errorf("ttl token without expiry: %s", ttl.raw)
	}
	h.want(h.do("DELETE", "/api/v1/tokens/ci", adminToken, "", nil), 200, "delete token")
	h.want(h.do("DELETE", "/api/v1/tokens/ci", adminToken, "", nil), 404, "delete again")
	h.want(h.do("GET", "/api/v1/routes?namespace=a", secret, "", nil), 401, "deleted token")
}

func TestAuditLog(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	viewer := h.token("view", "viewer", nil, nil)
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	h.want(h.do("DELETE", "/api/v1/routes/web", viewer, "", nil), 403, "denied delete")
	h.want(h.do("GET", "/api/v1/routes", "bad", "", nil), 401, "denied read")
	h.want(h.do("GET", "/api/v1/routes", viewer, "", nil), 200, "allowed read (not audited)")
	h.want(h.do("GET", "/api/v1/audit", viewer, "", nil), 403, "viewer reads the audit log")
	r := h.want(h.do("GET", "/api/v1/audit", adminToken, "", nil), 200, "audit")
	items, _ := r.body["items"].([]any)
	var got []string
	for _, it := range items {
		got = append(got, str(it, "actor")+" "+str(it, "role")+" "+str(it, "method")+" "+str(it, "status"))
	}
	want := []string{"admin admin POST 201", "admin admin POST 200", "view viewer DELETE 403", "  GET 401", "view viewer GET 403"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	apply := items[1].(map[string]any)
	objs, _ := apply["objects"].([]any)
	if len(objs) != 3 || objs[2] != "Route/web" || str(apply, "revision") != "3" || str(apply, "time") == "" || str(apply, "path") != "/api/v1/apply" {
		t.Errorf("apply entry = %v", apply)
	}
	if del := items[2].(map[string]any); !strings.Contains(str(del, "message"), "forbidden") || str(del, "path") != "/api/v1/routes/web" {
		t.Errorf("denied entry = %v", del)
	}
	page := h.want(h.do("GET", "/api/v1/audit?limit=2&after="+str(items[0], "id"), adminToken, "", nil), 200, "audit page")
	if p, _ := page.body["items"].([]any); len(p) != 2 || str(p[0], "id") != str(items[1], "id") {
		t.Errorf("audit page = %s", page.raw)
	}
	h.want(h.do("GET", "/api/v1/audit?limit=0", adminToken, "", nil), 400, "bad limit")
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), func(o *Options) { o.MaxBodyBytes = 1024 })
	rev := h.revision()
	big := "# " + strings.Repeat("x", 2048) + "\n" + baseYAML
	r := h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", big), 413, "oversized body")
	if r.err("code") != CodeTooLarge {
		t.Errorf("413: %s", r.raw)
	}
	r = h.want(h.doChunked("POST", "/api/v1/apply", "application/yaml", big), 413, "oversized chunked body")
	r = h.want(h.do("POST", "/api/v1/apply", adminToken, "text/html", "<html></html>"), 415, "text/html")
	if r.err("code") != CodeUnsupportedMedia {
		t.Errorf("415: %s", r.raw)
	}
	for _, c := range []struct {
		method, path, ctype, body, code, field string
		status                                 int
	}{
		{"PUT", "/api/v1/routes/x", "application/json", `{"spec": {`, CodeInvalid, "", 400},
		{"PUT", "/api/v1/routes/x", "application/json", `{"spec": {"hosts": "one"}}`, CodeInvalid, "spec.hosts", 400},
		{"PUT", "/api/v1/routes/x", "application/json", `{"spec": {"backends": [{"upstream": "ghost"}]}}`, CodeInvalid, "spec.backends[0].upstream", 400},
		{"PUT", "/api/v1/routes/x", "application/json", ``, CodeInvalid, "", 400},
		{"PUT", "/api/v1/routes/x?dryRun=maybe", "application/json", `{}`, CodeInvalid, "dryRun", 400},
		{"PUT", "/api/v1/widgets/x", "application/json", `{}`, CodeUnknownKind, "", 404},
		{"GET", "/api/v1/clusters", "", ``, CodeUnknownKind, "", 404},
		{"PATCH", "/api/v1/routes/x", "application/json", `{}`, CodeMethodNotAllowed, "", 405},
		{"GET", "/api/v1/routes/x/y/z", "", ``, CodeNotFound, "", 404},
		{"GET", "/api/v1/routes/x?namespace=*", "", ``, CodeInvalid, "namespace", 400},
		{"POST", "/api/v1/apply", "application/yaml", "kind: Widget\nmetadata: {name: w}\n", CodeInvalid, "kind", 400},
	} {
		r := h.want(h.do(c.method, c.path, adminToken, c.ctype, c.body), c.status, c.method+" "+c.path+" "+c.body)
		if r.err("code") != c.code || r.err("field") != c.field {
			t.Errorf("%s %s %q: code %q field %q, want %q %q: %s", c.method, c.path, c.body, r.err("code"), r.err("field"), c.code, c.field, r.raw)
		}
	}
	r = h.want(h.do("GET", "/api/v1/clusters", adminToken, "", nil), 404, "clusters")
	if !strings.Contains(r.err("message"), "multi-cluster") {
		t.Errorf("clusters: %s", r.raw)
	}
	h.unchanged(rev, "bad requests")
}

// TestUnavailable: with the database gone the API answers 503 and says to retry.
func TestUnavailable(t *testing.T) {
	dsn := postgresDSN(t)
	u := mustParseURL(t, dsn)
	p := pgtest.StartProxy(t, u.Host)
	u.Host = p.Addr()
	h := newHarness(t, u.String(), nil)
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply while up")
	p.Cut()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/routes", ""}, {"GET", "/api/v1/routes/web", ""}, {"POST", "/api/v1/apply", baseYAML},
	} {
		r := h.want(h.do(c.method, c.path, adminToken, "application/yaml", c.body), 503, c.method+" "+c.path)
		if r.err("code") != CodeUnavailable || r.err("message") != "database unavailable, retry" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %s", c.method, c.path, r.raw)
		}
	}
	// A stored token cannot be checked without the database: 503, not 401.
	h.want(h.do("GET", "/api/v1/routes", "some-stored-token", "", nil), 503, "token lookup")
	h.want(h.do("GET", "/readyz", "", "", nil), 503, "readyz")
	h.want(h.do("GET", "/healthz", "", "", nil), 200, "healthz")
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"portico.dev/portico/internal/admin"
	"portico.dev/portico/internal/client"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
	"portico.dev/portico/internal/translate"
)

const e2eToken = "e2e-admin-token-0123456789"

const gatewayYAML = `apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, port: 8080, protocol: HTTP}]
`

// adminServer runs the real admin API over a real SQLite store in a temp dir, with
// statuses translated from the store.
func adminServer(t *testing.T) (string, store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "portico.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := store.Migrate(ctx, st); err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Options{Store: st, AdminToken: e2eToken, Statuses: func() translate.Statuses {
		res, err := st.Resources(context.Background())
		if err != nil {
			return nil
		}
		_, s := translate.Translate(res)
		return s
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, st
}

// e2e runs a client command against url with the admin token.
func e2e(t *testing.T, url string, args ...string) (string, string, error) {
	t.Helper()
	return runCLI(t, "", append(args, "--server", url, "--token", e2eToken)...)
}

func mustE2E(t *testing.T, url string, args ...string) string {
	t.Helper()
	out, errOut, err := e2e(t, url, args...)
	if err != nil {
		t.Fatalf("portico %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func TestE2EApplyGetDiffHistoryRollbackDelete(t *testing.T) {
	url, st := adminServer(t)
	ctx := context.Background()
	dir := writeTree(t, map[string]string{"1-gateway.yaml": gatewayYAML, "2-app.yaml": upstreamYAML + "---\n" + routeYAML})

	out := mustE2E(t, url, "apply", "-f", dir)
	if out != "gateway/default created\nupstream/echo created\nroute/echo created\n" {
		t.Fatalf("first apply:\n%s", out)
	}
	if out := mustE2E(t, url, "apply", "-f", dir); strings.Count(out, "unchanged") != 3 {
		t.Fatalf("second apply:\n%s", out)
	}

	// get: table, yaml, json.
	out = mustE2E(t, url, "get", "routes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME HOSTS BACKENDS STATUS AGE" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "echo * echo Accepted ") {
		t.Fatalf("get routes:\n%s", out)
	}
	out = mustE2E(t, url, "get", "Upstream", "-A")
	if !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "127.0.0.1:9001") || !strings.Contains(out, "round-robin") {
		t.Fatalf("get upstreams -A:\n%s", out)
	}
	out = mustE2E(t, url, "get", "route", "echo", "-o", "yaml")
	for _, want := range []string{"kind: Route\n", "  name: echo\n", "resourceVersion:", "value: /echo\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get route echo -o yaml lacks %q:\n%s", want, out)
		}
	}
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustE2E(t, url, "get", "gateways", "-o", "json")), &list); err != nil || list.Kind != "List" || len(list.Items) != 1 {
		t.Fatalf("get gateways -o json: %+v %v", list, err)
	}

	// diff: nothing, then a change and a new object.
	if out, _, err := e2e(t, url, "diff", "-f", dir); err != nil || out != "" {
		t.Fatalf("diff of applied files: %q %v", out, err)
	}
	changed := writeTree(t, map[string]string{
		"route.yaml": strings.Replace(routeYAML, "/echo", "/echo2", 1),
		"new.yaml":   strings.Replace(upstreamYAML, "name: echo", "name: fresh", 1),
	})
	out, _, err := e2e(t, url, "diff", "-f", changed)
	var exit *exitCodeError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("diff of changed files: want exit status 1, got %v", err)
	}
	for _, want := range []string{"--- Route/echo (stored)\n", "-      value: /echo\n", "+      value: /echo2\n",
		"--- Upstream/fresh (not stored)\n", "@@ -0,0 +1,", "+  name: fresh\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("diff lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "resourceVersion") || strings.Contains(out, "creationTimestamp") || strings.Contains(out, "status") {
		t.Fatalf("diff shows server-owned fields:\n%s", out)
	}

	// Dry run stores nothing.
	before, _ := st.Revision(ctx)
	out = mustE2E(t, url, "apply", "--dry-run", "-f", changed)
	if !strings.Contains(out, "route/echo configured (dry run)") || !strings.Contains(out, "upstream/fresh created (dry run)") {
		t.Fatalf("dry run:\n%s", out)
	}
	if after, _ := st.Revision(ctx); after != before {
		t.Fatalf("dry run wrote: revision %d → %d", before, after)
	}

	out = mustE2E(t, url, "apply", "-f", filepath.Join(changed, "route.yaml"))
	if out != "route/echo configured\n" {
		t.Fatalf("apply change:\n%s", out)
	}

	// history and rollback.
	out = mustE2E(t, url, "history", "routes", "echo")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || strings.Join(strings.Fields(rows[0]), " ") != "REVISION OPERATION ACTOR TIME" {
		t.Fatalf("history:\n%s", out)
	}
	first := strings.Fields(rows[1])
	if first[1] != "create" || first[2] != "admin" || strings.Fields(rows[2])[1] != "update" {
		t.Fatalf("history rows:\n%s", out)
	}
	out = mustE2E(t, url, "history", "routes", "echo", "--diff")
	if !strings.Contains(out, "# revision "+first[0]+": create by admin") || !strings.Contains(out, "-      value: /echo\n") ||
		!strings.Contains(out, "+      value: /echo2\n") {
		t.Fatalf("history --diff does not show what the update changed:\n%s", out)
	}
	out = mustE2E(t, url, "rollback", "route", "echo", "--to-revision", first[0])
	if !strings.HasPrefix(out, "route/echo rolled back to revision "+first[0]) {
		t.Fatalf("rollback: %q", out)
	}
	if out, _, err := e2e(t, url, "diff", "-f", dir); err != nil || out != "" {
		t.Fatalf("diff after rollback: %q %v", out, err)
	}

	// delete: a referenced upstream is refused; the files delete in a safe order.
	_, _, err = e2e(t, url, "delete", "upstream", "echo")
	if !client.IsCode(err, "conflict") || !strings.HasPrefix(err.Error(), "409 conflict: ") {
		t.Fatalf("deleting a referenced upstream: %v", err)
	}
	out = mustE2E(t, url, "delete", "-f", dir)
	if out != "route/echo deleted\nupstream/echo deleted\ngateway/default deleted\n" {
		t.Fatalf("delete -f:\n%s", out)
	}
	_, _, err = e2e(t, url, "get", "route", "echo")
	if !client.IsCode(err, "not_found") || !strings.HasPrefix(err.Error(), "404 not_found: ") {
		t.Fatalf("get after delete: %v", err)
	}
	_, errOut, err := e2e(t, url, "get", "routes")
	if err != nil || !strings.Contains(errOut, "No unnamespaced routes found") {
		t.Fatalf("empty list: %q %v", errOut, err)
	}
}

// TestE2EBadFileNothingSent: a bad file is reported with file, document and field,
// and the store is not touched.
func TestE2EBadFileNothingSent(t *testing.T) {
	url, st := adminServer(t)
	ctx := context.Background()
	dir := writeTree(t, map[string]string{
		"good.yaml": upstreamYAML,
		"bad.yaml":  routeYAML + "---\n" + strings.Replace(routeYAML, "PathPrefix", "Prefix", 1),
	})
	_, _, err := e2e(t, url, "apply", "-f", dir)
	var lerr *resource.LoadError
	if !errors.As(err, &lerr) || len(lerr.Problems) == 0 {
		t.Fatalf("want a load error, got %v", err)
	}
	p := lerr.Problems[0]
	if p.File != filepath.Join(dir, "bad.yaml") || p.Document != 2 || p.Field != "spec.matches[0].path.type" {
		t.Fatalf("problem: %+v", p)
	}
	if !strings.Contains(err.Error(), "bad.yaml: document 2") {
		t.Fatalf("message: %v", err)
	}
	dup := false // the duplicate route name in bad.yaml is reported in the same pass
	for _, p := range lerr.Problems {
		dup = dup || strings.Contains(p.Message, `duplicate Route "echo"`)
	}
	if !dup {
		t.Fatalf("duplicate not reported: %v", err)
	}
	objs, err := st.List(ctx, "", store.AllNamespaces)
	if err != nil || len(objs) != 0 {
		t.Fatalf("store after a refused apply: %d objects, %v", len(objs), err)
	}
	if rev, _ := st.Revision(ctx); rev != 0 {
		t.Fatalf("store revision %d after a refused apply", rev)
	}
}

// TestE2EServerErrors: the envelope becomes a message naming code, object and field;
// a wrong token says where it came from.
func TestE2EServerErrors(t *testing.T) {
	url, _ := adminServer(t)
	_, _, err := runCLI(t, "", "get", "routes", "--server", url, "--token", "wrong-token")
	if err == nil || !strings.HasPrefix(err.Error(), "401 unauthorized: ") || !strings.Contains(err.Error(), "the token from --token was refused") {
		t.Fatalf("wrong token: %v", err)
	}
	_, _, err = runCLI(t, "", "get", "routes", "--server", url, "--client-config", filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !strings.Contains(err.Error(), "client config") {
		t.Fatalf("missing client config: %v", err)
	}

	// The token through client.yaml's tokenFile.
	cfgDir := writeTree(t, map[string]string{"admin.token": e2eToken + "\n", "client.yaml": "server: " + url + "\ntokenFile: admin.token\n"})
	out, errOut, err := runCLI(t, "", "get", "routes", "--client-config", filepath.Join(cfgDir, "client.yaml"))
	if err != nil || out != "" || !strings.Contains(errOut, "No unnamespaced routes") {
		t.Fatalf("client.yaml: %q %q %v", out, errOut, err)
	}

	// A body the server refuses: the error names the object and field.
	cfg := &client.Config{Server: url, Token: e2eToken}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(routeYAML, "PathPrefix", "Prefix", 1)
	_, err = c.Put(context.Background(), "route", "", "echo", []byte(bad), false)
	if !client.IsCode(err, "invalid") || !strings.HasPrefix(err.Error(), "400 invalid: Route/echo: spec.matches[0].path.type: ") {
		t.Fatalf("PUT of an invalid route: %v", err)
	}
	_, err = c.Put(context.Background(), "route", "", "other", []byte(routeYAML), false)
	if err == nil || !strings.HasPrefix(err.Error(), "400 ") {
		t.Fatalf("PUT with a name that does not match the path: %v", err)
	}
}

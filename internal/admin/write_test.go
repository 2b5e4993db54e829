package admin

import (
	"strings"
	"testing"
)

const baseYAML = `
apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, port: 8080, protocol: HTTP, hostname: "*.a.example"}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: echo}
spec:
  endpoints: [{address: "127.0.0.1:9001"}]
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: web}
spec:
  hosts: [www.a.example]
  backends: [{upstream: echo}]
`

func applyItems(t *testing.T, r reply) []string {
	t.Helper()
	items, _ := r.body["items"].([]any)
	var out []string
	for _, it := range items {
		out = append(out, str(it, "kind")+"/"+str(it, "name")+" "+str(it, "action"))
	}
	return out
}

func TestApply(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	r := h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	if got := strings.Join(applyItems(t, r), ", "); got != "Gateway/default created, Upstream/echo created, Route/web created" {
		t.Errorf("items = %s", got)
	}
	for _, it := range r.body["items"].([]any) {
		if str(it, "resourceVersion") == "" {
			t.Errorf("item without resourceVersion: %v", it)
		}
	}
	rev := h.revision()
	r = h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply again")
	if got := strings.Join(applyItems(t, r), ", "); got != "Gateway/default unchanged, Upstream/echo unchanged, Route/web unchanged" {
		t.Errorf("items = %s", got)
	}
	h.unchanged(rev, "re-apply of the same objects")

	// A JSON array and a kind: List are accepted too.
	arr := `[{"apiVersion":"portico.dev/v1alpha1","kind":"Upstream","metadata":{"name":"a1"},"spec":{"endpoints":[{"address":"127.0.0.1:1"}]}}]`
	r = h.want(h.do("POST", "/api/v1/apply", adminToken, "application/json", arr), 200, "JSON array")
	if got := strings.Join(applyItems(t, r), ","); got != "Upstream/a1 created" {
		t.Errorf("array items = %s", got)
	}
	list := `{"kind":"List","items":[{"apiVersion":"portico.dev/v1alpha1","kind":"Upstream","metadata":{"name":"a1"},"spec":{"endpoints":[{"address":"127.0.0.1:2"}]}}]}`
	r = h.want(h.do("POST", "/api/v1/apply", adminToken, "application/json", list), 200, "kind: List")
	if got := strings.Join(applyItems(t, r), ","); got != "Upstream/a1 updated" {
		t.Errorf("list items = %s", got)
	}
}

// TestApplyAtomic: one bad document and nothing is stored.
func TestApplyAtomic(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	rev := h.revision()
	extra := `
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: second}
spec: {endpoints: [{address: "127.0.0.1:9002"}]}
`
	for _, c := range []struct {
		name, body, field, object string
		status                    int
	}{
		{"unknown field", extra + "---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: bad}\nspec: {bogus: 1}\n", "spec.bogus", "Route/bad", 400},
		{"invalid value", extra + "---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: bad}\nspec:\n  matches: [{path: {value: nope}}]\n", "spec.matches[0].path.value", "Route/bad", 400},
		{"unknown kind", extra + "---\napiVersion: portico.dev/v1alpha1\nkind: Nope\nmetadata: {name: bad}\n", "kind", "Nope/bad", 400},
		{"missing reference", extra + "---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: bad}\nspec: {backends: [{upstream: echo}, {upstream: ghost}]}\n", "spec.backends[1].upstream", "Route/bad", 400},
		{"stale resourceVersion", extra + "---\napiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: echo, resourceVersion: \"1\"}\nspec: {endpoints: [{address: \"127.0.0.1:1\"}]}\n", "metadata.resourceVersion", "Upstream/echo", 409},
		{"malformed YAML", extra + "---\nkind: Route\n  metadata: [\n", "", "", 400},
	} {
		r := h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", c.body), c.status, c.name)
		if r.err("field") != c.field || r.err("object") != c.object {
			t.Errorf("%s: field %q object %q, want %q %q: %s", c.name, r.err("field"), r.err("object"), c.field, c.object, r.raw)
		}
		h.unchanged(rev, c.name)
	}
	// Several problems: each is listed, the first gives the field.
	r := h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml",
		"apiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: x}\nspec: {bogus: 1, hosts: 3}\n"), 400, "two problems")
	if len(r.details()) < 2 || r.err("field") == "" {
		t.Errorf("several problems: %s", r.raw)
	}
	if _, err := h.st.Get(t.Context(), "Upstream", "", "second"); err == nil {
		t.Error("a failed apply stored an object")
	}
}

func TestStaleResourceVersion(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	cur := h.want(h.do("GET", "/api/v1/upstreams/echo", adminToken, "", nil), 200, "get")
	rv := str(cur.body, "metadata", "resourceVersion")
	body := obj("Upstream", "echo", map[string]any{"endpoints": []any{map[string]any{"address": "127.0.0.1:7"}}})
	body["metadata"].(map[string]any)["resourceVersion"] = rv
	h.want(h.do("PUT", "/api/v1/upstreams/echo", adminToken, "", body), 200, "put with the current resourceVersion")
	rev := h.revision()
	body["spec"] = map[string]any{"endpoints": []any{map[string]any{"address": "127.0.0.1:8"}}}
	r := h.want(h.do("PUT", "/api/v1/upstreams/echo", adminToken, "", body), 409, "stale put")
	if r.err("code") != CodeConflict || r.err("field") != "metadata.resourceVersion" {
		t.Errorf("stale put: %s", r.raw)
	}
	h.want(h.do("DELETE", "/api/v1/routes/web?resourceVersion=1", adminToken, "", nil), 409, "stale delete")
	h.unchanged(rev, "stale writes")
}

func TestDryRun(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	rev := h.revision()
	// A route whose host no listener serves: stored it would not be programmed.
	route := obj("Route", "other", map[string]any{"hosts": []string{"www.b.example"}, "backends": []any{map[string]any{"upstream": "echo"}}})
	r := h.want(h.do("PUT", "/api/v1/routes/other?dryRun=true", adminToken, "", route), 200, "dry-run put")
	if r.body["dryRun"] != true || str(r.body, "object", "metadata", "name") != "other" {
		t.Errorf("dry-run answer: %s", r.raw)
	}
	conds, _ := r.body["statuses"].(map[string]any)["Route/other"].([]any)
	found := false
	for _, c := range conds {
		if str(c, "type") == "Accepted" && str(c, "status") == "False" && str(c, "reason") == "NoMatchingListenerHostname" {
			found = true
		}
	}
	if !found {
		t.Errorf("dry-run statuses lack the hostname mismatch: %s", r.raw)
	}
	h.want(h.do("GET", "/api/v1/routes/other", adminToken, "", nil), 404, "dry-run object")

	// Apply: a listener conflict on the same port.
	gw := "apiVersion: portico.dev/v1alpha1\nkind: Gateway\nmetadata: {name: second}\nspec:\n  listeners: [{name: tcp, port: 8080, protocol: TCP}]\n"
	r = h.want(h.do("POST", "/api/v1/apply?dryRun=true", adminToken, "application/yaml", gw), 200, "dry-run apply")
	if !strings.Contains(string(r.raw), "ListenerConflict") || strings.Join(applyItems(t, r), ",") != "Gateway/second created" {
		t.Errorf("dry-run apply: %s", r.raw)
	}
	// Delete: the route is deletable, and the answer says what it would delete.
	r = h.want(h.do("DELETE", "/api/v1/routes/web?dryRun=true", adminToken, "", nil), 200, "dry-run delete")
	if strings.Join(applyItems(t, r), ",") != "Route/web deleted" {
		t.Errorf("dry-run delete: %s", r.raw)
	}
	h.unchanged(rev, "dry runs")
	h.want(h.do("GET", "/api/v1/routes/web", adminToken, "", nil), 200, "route after a dry-run delete")
}

// TestDeleteReferenced: an object others reference cannot be deleted (409 naming them).
func TestDeleteReferenced(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	rev := h.revision()
	r := h.want(h.do("DELETE", "/api/v1/upstreams/echo", adminToken, "", nil), 409, "delete referenced upstream")
	if r.err("object") != "Route/web" || r.err("field") != "spec.backends[0].upstream" || !strings.Contains(r.err("message"), "Route/web") {
		t.Errorf("409 does not name the referrer: %s", r.raw)
	}
	h.unchanged(rev, "refused delete")
	// Deleting the route and its upstream together works.
	h.want(h.do("DELETE", "/api/v1/routes/web", adminToken, "", nil), 200, "delete route")
	h.want(h.do("DELETE", "/api/v1/upstreams/echo", adminToken, "", nil), 200, "delete upstream")
}

func TestHistoryRollback(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	ed := h.token("ed", "editor", nil, nil)
	v2 := obj("Route", "web", map[string]any{"hosts": []string{"v2.a.example"}, "backends": []any{map[string]any{"upstream": "echo"}}})
	h.want(h.do("PUT", "/api/v1/routes/web", ed, "", v2), 200, "v2")
	r := h.want(h.do("GET", "/api/v1/routes/web/history", ed, "", nil), 200, "history")
	items, _ := r.body["items"].([]any)
	if len(items) != 2 || str(items[0], "actor") != "admin" || str(items[1], "actor") != "ed" ||
		str(items[0], "operation") != "create" || str(items[1], "operation") != "update" || str(items[0], "object", "spec", "hosts") != "" {
		t.Fatalf("history = %s", r.raw)
	}
	back := h.want(h.do("POST", "/api/v1/routes/web/rollback", ed, "", map[string]any{"revision": items[0].(map[string]any)["revision"]}), 200, "rollback")
	if !strings.Contains(string(back.raw), "www.a.example") {
		t.Errorf("rolled back object = %s", back.raw)
	}
	r = h.want(h.do("GET", "/api/v1/routes/web/history", ed, "", nil), 200, "history after rollback")
	items, _ = r.body["items"].([]any)
	if len(items) != 3 || str(items[2], "operation") != "rollback" || str(items[2], "actor") != "ed" {
		t.Errorf("history after rollback = %s", r.raw)
	}
	rev := h.revision()
	h.want(h.do("POST", "/api/v1/routes/web/rollback", ed, "", map[string]any{"revision": 999}), 404, "unknown revision")
	h.want(h.do("POST", "/api/v1/routes/web/rollback", ed, "", map[string]any{"rev": 1}), 400, "bad body")
	// A revision whose upstream is gone cannot be restored.
	up := obj("Upstream", "other", map[string]any{"endpoints": []any{map[string]any{"address": "127.0.0.1:3"}}})
	h.want(h.do("PUT", "/api/v1/upstreams/other", ed, "", up), 201, "other upstream")
	v3 := obj("Route", "web", map[string]any{"backends": []any{map[string]any{"upstream": "other"}}})
	r3 := h.want(h.do("PUT", "/api/v1/routes/web", ed, "", v3), 200, "v3")
	h.want(h.do("PUT", "/api/v1/routes/web", ed, "", v2), 200, "v4")
	h.want(h.do("DELETE", "/api/v1/upstreams/other", ed, "", nil), 200, "delete other")
	rev = h.revision()
	r = h.want(h.do("POST", "/api/v1/routes/web/rollback", ed, "", map[string]any{"revision": r3.body["metadata"].(map[string]any)["resourceVersion"]}), 400, "rollback to a dangling reference")
	if r.err("field") != "spec.backends[0].upstream" {
		t.Errorf("dangling rollback: %s", r.raw)
	}
	h.unchanged(rev, "refused rollbacks")
}

package admin

import (
	"fmt"
	"strings"
	"testing"
)

// kindCase is one kind's object, and a change to it.
type kindCase struct {
	plural, name string
	body         func(variant int) map[string]any
}

func obj(kind, name string, spec map[string]any) map[string]any {
	return map[string]any{"apiVersion": "portico.dev/v1alpha1", "kind": kind, "metadata": map[string]any{"name": name}, "spec": spec}
}

// kindCases covers every kind, in an order where references resolve when created.
func kindCases(t *testing.T) []kindCase {
	cert, key := selfSigned(t, "site.example")
	return []kindCase{
		{"certificates", "site", func(v int) map[string]any {
			return obj("Certificate", "site", map[string]any{"cert": cert, "key": key, "hosts": []string{fmt.Sprintf("h%d.site.example", v)}})
		}},
		{"upstreams", "echo", func(v int) map[string]any {
			return obj("Upstream", "echo", map[string]any{"endpoints": []any{map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", 9000+v)}}})
		}},
		{"gateways", "default", func(v int) map[string]any {
			return obj("Gateway", "default", map[string]any{"listeners": []any{
				map[string]any{"name": "https", "port": 8443 + v, "protocol": "HTTPS", "tls": map[string]any{"certificateRefs": []string{"site"}}},
				map[string]any{"name": "tcp", "port": 9443 + v, "protocol": "TCP"},
			}})
		}},
		{"routes", "web", func(v int) map[string]any {
			return obj("Route", "web", map[string]any{"hosts": []string{fmt.Sprintf("v%d.example", v)}, "backends": []any{map[string]any{"upstream": "echo"}}})
		}},
		{"streamroutes", "db", func(v int) map[string]any {
			return obj("StreamRoute", "db", map[string]any{"listener": "tcp", "backends": []any{map[string]any{"upstream": "echo"}}, "idleTimeout": fmt.Sprintf("%ds", 10+v)})
		}},
		{"consumers", "alice", func(v int) map[string]any {
			return obj("Consumer", "alice", map[string]any{"credentials": []any{map[string]any{"type": "key-auth", "key": fmt.Sprintf("alice-key-%d", v)}}})
		}},
		{"plugins", "cors-web", func(v int) map[string]any {
			return obj("Plugin", "cors-web", map[string]any{"plugin": "request-id", "attachTo": map[string]any{"kind": "Route", "name": "web"},
				"config": map[string]any{"header": fmt.Sprintf("X-Id-%d", v)}})
		}},
	}
}

// TestCRUDEveryKind runs create, read, unchanged and changed replace, list and delete
// for every kind, over SQLite and PostgreSQL.
func TestCRUDEveryKind(t *testing.T) {
	for _, d := range []struct {
		name string
		dsn  func(*testing.T) string
	}{{"sqlite", sqliteDSN}, {"postgres", postgresDSN}} {
		t.Run(d.name, func(t *testing.T) {
			h := newHarness(t, d.dsn(t), nil)
			cases := kindCases(t)
			for _, c := range cases {
				path := "/api/v1/" + c.plural + "/" + c.name
				created := h.want(h.do("PUT", path, adminToken, "", c.body(0)), 201, "create "+path)
				rv := str(created.body, "metadata", "resourceVersion")
				if rv == "" || str(created.body, "metadata", "creationTimestamp") == "" {
					t.Fatalf("%s: no resourceVersion/creationTimestamp in %s", path, created.raw)
				}
				got := h.want(h.do("GET", path, adminToken, "", nil), 200, "get "+path)
				if str(got.body, "metadata", "resourceVersion") != rv || str(got.body, "kind") == "" {
					t.Errorf("%s: GET = %s", path, got.raw)
				}
				rev := h.revision()
				same := h.want(h.do("PUT", path, adminToken, "", c.body(0)), 200, "identical put "+path)
				if str(same.body, "metadata", "resourceVersion") != rv {
					t.Errorf("%s: identical PUT changed the resourceVersion %s -> %s", path, rv, str(same.body, "metadata", "resourceVersion"))
				}
				h.unchanged(rev, "identical PUT of "+path)
				upd := h.want(h.do("PUT", path, adminToken, "", c.body(1)), 200, "update "+path)
				if nrv := str(upd.body, "metadata", "resourceVersion"); nrv == rv || nrv == "" {
					t.Errorf("%s: update kept resourceVersion %s", path, rv)
				}
				list := h.want(h.do("GET", "/api/v1/"+c.plural, adminToken, "", nil), 200, "list "+c.plural)
				items, _ := list.body["items"].([]any)
				if len(items) != 1 || str(list.body, "kind") != "List" || str(list.body, "metadata", "resourceVersion") == "" {
					t.Errorf("list %s = %s", c.plural, list.raw)
				}
			}
			// Delete in reverse order, so nothing is referenced when it goes.
			for i := len(cases) - 1; i >= 0; i-- {
				c := cases[i]
				path := "/api/v1/" + c.plural + "/" + c.name
				del := h.want(h.do("DELETE", path, adminToken, "", nil), 200, "delete "+path)
				if str(del.body, "metadata", "name") != c.name {
					t.Errorf("delete %s answered %s", path, del.raw)
				}
				r := h.want(h.do("GET", path, adminToken, "", nil), 404, "get deleted "+path)
				if r.err("code") != CodeNotFound {
					t.Errorf("get deleted %s: %s", path, r.raw)
				}
			}
		})
	}
}

// TestYAMLAndIdentityFill: a YAML body without kind and name takes them from the path;
// a body that disagrees with the path is refused.
func TestYAMLAndIdentityFill(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	r := h.want(h.do("PUT", "/api/v1/upstreams/u?namespace=team", adminToken, "application/yaml",
		"spec:\n  endpoints:\n  - address: 127.0.0.1:80\n"), 201, "YAML put")
	if str(r.body, "kind") != "Upstream" || str(r.body, "metadata", "name") != "u" || str(r.body, "metadata", "namespace") != "team" {
		t.Errorf("filled object = %s", r.raw)
	}
	rev := h.revision()
	for _, c := range []struct{ path, body, field string }{
		{"/api/v1/upstreams/u?namespace=team", `{"kind":"Route","spec":{}}`, "kind"},
		{"/api/v1/upstreams/u?namespace=team", `{"metadata":{"name":"v"},"spec":{}}`, "metadata.name"},
		{"/api/v1/upstreams/u", `{"metadata":{"namespace":"team"},"spec":{}}`, "metadata.namespace"},
	} {
		r := h.want(h.do("PUT", c.path, adminToken, "application/json", c.body), 400, c.body)
		if r.err("field") != c.field || r.err("code") != CodeInvalid {
			t.Errorf("%s: field %q code %q, want %q: %s", c.body, r.err("field"), r.err("code"), c.field, r.raw)
		}
	}
	r = h.want(h.do("PUT", "/api/v1/upstreams/u", adminToken, "application/yaml", "kind: Upstream\n---\nkind: Upstream\n"), 400, "two documents")
	if !strings.Contains(r.err("message"), "apply") {
		t.Errorf("multi-document PUT: %s", r.raw)
	}
	h.unchanged(rev, "refused PUTs")
	// Namespaces are separate: the unnamespaced list does not show team's upstream.
	list := h.want(h.do("GET", "/api/v1/upstreams", adminToken, "", nil), 200, "list")
	if items, _ := list.body["items"].([]any); len(items) != 0 {
		t.Errorf("unnamespaced list = %s", list.raw)
	}
	all := h.want(h.do("GET", "/api/v1/upstreams?namespace=*", adminToken, "", nil), 200, "list all")
	if items, _ := all.body["items"].([]any); len(items) != 1 {
		t.Errorf("list of every namespace = %s", all.raw)
	}
}

package admin

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"portico.dev/portico/api/v1alpha1"
)

// schemaChecker validates JSON values against the document's schemas: enough of JSON
// Schema 2020-12 for what the generator emits ($ref, type, properties, required,
// additionalProperties, items, const, enum, oneOf, allOf).
type schemaChecker struct{ schemas map[string]any }

func (c *schemaChecker) check(schema any, v any, path string) error {
	s, ok := schema.(map[string]any)
	if !ok {
		if schema == false {
			return fmt.Errorf("%s: not allowed", path)
		}
		return nil // true, or absent
	}
	if ref, ok := s["$ref"].(string); ok {
		target, found := c.schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		if !found {
			return fmt.Errorf("%s: dangling $ref %s", path, ref)
		}
		return c.check(target, v, path)
	}
	if want, ok := s["const"]; ok && fmt.Sprint(want) != fmt.Sprint(v) {
		return fmt.Errorf("%s: must be %v", path, want)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s: not one of %v", path, enum)
	}
	for _, sub := range asList(s["allOf"]) {
		if err := c.check(sub, v, path); err != nil {
			return err
		}
	}
	if one := asList(s["oneOf"]); len(one) > 0 {
		n := 0
		for _, sub := range one {
			if c.check(sub, v, path) == nil {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: matches %d of oneOf, want 1", path, n)
		}
	}
	if t, ok := s["type"].(string); ok && !hasType(t, v) {
		return fmt.Errorf("%s: want %s, got %T", path, t, v)
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				return fmt.Errorf("%s.%s: required", path, r)
			}
		}
		for k, val := range x {
			sub, known := props[k]
			if !known {
				sub, known = s["additionalProperties"], s["additionalProperties"] != nil
				if !known {
					continue
				}
			}
			if err := c.check(sub, val, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := c.check(s["items"], e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

func hasType(t string, v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return t == "object"
	case []any:
		return t == "array"
	case string:
		return t == "string"
	case bool:
		return t == "boolean"
	case nil:
		return t == "null"
	case float64:
		return t == "number" || (t == "integer" && x == math.Trunc(x))
	}
	return false
}

func TestOpenAPI(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), nil)
	r := h.want(h.do("GET", "/api/v1/openapi.json", "", "", nil), 200, "openapi")
	var doc struct {
		OpenAPI    string         `json:"openapi"`
		Paths      map[string]any `json:"paths"`
		Components struct {
			Schemas         map[string]any `json:"schemas"`
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.raw, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || str(doc.Components.SecuritySchemes, "bearer", "scheme") != "bearer" {
		t.Errorf("openapi %q, security schemes %v", doc.OpenAPI, doc.Components.SecuritySchemes)
	}
	want := []string{"/api/v1/apply", "/api/v1/dataplanes", "/api/v1/tokens", "/api/v1/tokens/{name}", "/api/v1/audit",
		"/api/v1/openapi.json", "/healthz", "/readyz", "/metrics"}
	for _, k := range v1alpha1.Kinds {
		base := "/api/v1/" + Plural(k)
		want = append(want, base, base+"/{name}", base+"/{name}/history", base+"/{name}/rollback")
		if doc.Components.Schemas[k] == nil || doc.Components.Schemas[k+"List"] == nil {
			t.Errorf("no schema for %s", k)
		}
	}
	for _, p := range want {
		if doc.Paths[p] == nil {
			t.Errorf("path %s missing", p)
		}
	}
	if doc.Components.Schemas["ErrorEnvelope"] == nil {
		t.Error("no error envelope schema")
	}
	// Every $ref resolves.
	for _, m := range regexp.MustCompile(`"\$ref":\s*"([^"]+)"`).FindAllStringSubmatch(string(r.raw), -1) {
		name, isSchema := strings.CutPrefix(m[1], "#/components/schemas/")
		if isSchema && doc.Components.Schemas[name] == nil {
			t.Errorf("dangling $ref %s", m[1])
		}
	}

	c := &schemaChecker{doc.Components.Schemas}
	route := func(mut func(m map[string]any)) map[string]any {
		m := map[string]any{"apiVersion": "portico.dev/v1alpha1", "kind": "Route", "metadata": map[string]any{"name": "r"},
			"spec": map[string]any{"hosts": []any{"a.example"}, "backends": []any{map[string]any{"upstream": "u", "weight": float64(2)}}}}
		if mut != nil {
			mut(m)
		}
		return m
	}
	if err := c.check(doc.Components.Schemas["Route"], route(nil), "Route"); err != nil {
		t.Errorf("a valid route is rejected: %v", err)
	}
	for name, mut := range map[string]func(map[string]any){
		"unknown field": func(m map[string]any) { m["spec"].(map[string]any)["bogus"] = 1.0 },
		"wrong type":    func(m map[string]any) { m["spec"].(map[string]any)["hosts"] = "a.example" },
		"missing name":  func(m map[string]any) { m["metadata"] = map[string]any{} },
		"other kind":    func(m map[string]any) { m["kind"] = "Upstream" },
		"fraction weight": func(m map[string]any) {
			m["spec"].(map[string]any)["backends"] = []any{map[string]any{"upstream": "u", "weight": 1.5}}
		},
	} {
		if err := c.check(doc.Components.Schemas["Route"], route(mut), "Route"); err == nil {
			t.Errorf("%s: the Route schema accepts it", name)
		}
	}
	// What the server answers conforms to the document.
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	for _, k := range []string{"Gateway", "Upstream", "Route"} {
		list := h.want(h.do("GET", "/api/v1/"+Plural(k), adminToken, "", nil), 200, "list")
		if err := c.check(doc.Components.Schemas[k+"List"], list.body, k+"List"); err != nil {
			t.Errorf("GET %s does not match its schema: %v", Plural(k), err)
		}
	}
	e := h.want(h.do("GET", "/api/v1/routes/nope", adminToken, "", nil), 404, "not found")
	if err := c.check(doc.Components.Schemas["ErrorEnvelope"], e.body, "error"); err != nil {
		t.Errorf("the error envelope does not match its schema: %v", err)
	}
	wr := h.want(h.do("POST", "/api/v1/apply?dryRun=true", adminToken, "application/yaml", baseYAML), 200, "dry run")
	if err := c.check(doc.Components.Schemas["WriteResult"], wr.body, "WriteResult"); err != nil {
		t.Errorf("an apply answer does not match its schema: %v", err)
	}
}

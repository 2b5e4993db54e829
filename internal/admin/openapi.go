package admin

import (
	"encoding/json"
	"strings"

	"github.com/invopop/jsonschema"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/store"
)

// ErrorEnvelope is the body of every error response.
type ErrorEnvelope struct {
	Error Error `json:"error"`
}

// schemaRef points into components.schemas.
func schemaRef(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// OpenAPI returns the OpenAPI 3.1 document of the admin API, generated from the Go
// types: one schema per kind (and every type it uses), the error envelope, and a path
// for every route.
func OpenAPI() ([]byte, error) {
	r := &jsonschema.Reflector{Anonymous: true}
	schemas := map[string]any{}
	collect := func(v any) {
		for name, def := range r.Reflect(v).Definitions {
			schemas[name] = def
		}
	}
	for _, k := range v1alpha1.Kinds {
		collect(v1alpha1.NewObject(k))
		if def, ok := schemas[k].(*jsonschema.Schema); ok && def.Properties != nil {
			def.Properties.Set("apiVersion", &jsonschema.Schema{Const: v1alpha1.APIVersion})
			def.Properties.Set("kind", &jsonschema.Schema{Const: k})
			if st, ok := def.Properties.Get("status"); ok {
				def.Properties.Set("status", &jsonschema.Schema{AllOf: []*jsonschema.Schema{st}, ReadOnly: true,
					Description: "Set by Portico from translation; ignored on writes."})
			}
		}
	}
	for _, v := range []any{&ErrorEnvelope{}, &WriteResult{}, &HistoryEntry{}, &ListMetadata{},
		&store.Token{}, &TokenRequest{}, &CreatedToken{}, &store.AuditEntry{}} {
		collect(v)
	}
	for _, k := range v1alpha1.Kinds {
		schemas[k+"List"] = map[string]any{
			"type":     "object",
			"required": []string{"apiVersion", "kind", "metadata", "items"},
			"properties": map[string]any{
				"apiVersion": map[string]any{"const": v1alpha1.APIVersion},
				"kind":       map[string]any{"const": "List"},
				"metadata":   schemaRef("ListMetadata"),
				"items":      map[string]any{"type": "array", "items": schemaRef(k)},
			},
		}
	}
	schemas["ApplyBody"] = map[string]any{
		"description": "One object, a JSON array of objects, a `kind: List`, or (as application/yaml) a multi-document YAML stream.",
		"oneOf": append(kindRefs(), map[string]any{"type": "array", "items": map[string]any{"oneOf": kindRefs()}},
			map[string]any{"type": "object", "required": []string{"kind", "items"}, "properties": map[string]any{
				"apiVersion": map[string]any{"type": "string"}, "kind": map[string]any{"const": "List"},
				"items": map[string]any{"type": "array", "items": map[string]any{"oneOf": kindRefs()}}}}),
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Portico admin API",
			"version":     v1alpha1.APIVersion,
			"description": "Objects, apply, dry runs, history and rollback, tokens and audit. See docs/admin-api.md.",
		},
		"security": []any{map[string]any{"bearer": []string{}}},
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "An API token or the bootstrap admin token."},
			},
			"responses": errorResponses(),
		},
		"paths": paths(),
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return []byte(strings.ReplaceAll(string(b), "#/$defs/", "#/components/schemas/")), nil
}

func kindRefs() []any {
	out := make([]any, len(v1alpha1.Kinds))
	for i, k := range v1alpha1.Kinds {
		out[i] = schemaRef(k)
	}
	return out
}

// errorResponses are the shared error responses, by code.
func errorResponses() map[string]any {
	out := map[string]any{}
	for code := range codeStatus {
		out[code] = map[string]any{
			"description": "error " + code,
			"content":     jsonContent(schemaRef("ErrorEnvelope")),
		}
	}
	return out
}

func jsonContent(schema any) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": schema}}
}

// op builds an operation with a 2xx body schema and the errors it may answer.
func op(summary string, okStatus string, okSchema any, errs ...string) map[string]any {
	responses := map[string]any{okStatus: map[string]any{"description": "success", "content": jsonContent(okSchema)}}
	for _, code := range append(errs, CodeUnauthorized, CodeUnavailable, CodeInternal) {
		responses[statusText(code)] = map[string]any{"$ref": "#/components/responses/" + code}
	}
	return map[string]any{"summary": summary, "responses": responses}
}

func statusText(code string) string {
	b, _ := json.Marshal(codeStatus[code])
	return string(b)
}

func param(name, in, desc string, required bool, schema map[string]any) map[string]any {
	return map[string]any{"name": name, "in": in, "description": desc, "required": required, "schema": schema}
}

var (
	strSchema   = map[string]any{"type": "string"}
	nsParam     = param("namespace", "query", `Namespace; empty for the unnamespaced objects, "*" (lists only) for every namespace.`, false, strSchema)
	nameParam   = param("name", "path", "Object name.", true, strSchema)
	dryRunParam = param("dryRun", "query", "Check and translate without storing; the answer carries the statuses the change would give.", false, map[string]any{"type": "boolean"})
	rvParam     = param("resourceVersion", "query", "Delete only if the stored resourceVersion matches (else 409).", false, strSchema)
	yamlOrJSON  = func(schema any) map[string]any {
		return map[string]any{"required": true, "content": map[string]any{
			"application/json": map[string]any{"schema": schema}, "application/yaml": map[string]any{"schema": schema}}}
	}
)

// paths lists every route of the API.
func paths() map[string]any {
	ps := map[string]any{}
	for _, k := range v1alpha1.Kinds {
		base := "/api/v1/" + Plural(k)
		ps[base] = map[string]any{"parameters": []any{nsParam},
			"get": op("List "+k+" objects in scope", "200", schemaRef(k+"List"), CodeForbidden, CodeInvalid)}
		get := op("Read a "+k+" with its status", "200", schemaRef(k), CodeForbidden, CodeNotFound)
		put := op("Create or replace a "+k+" (201 when created)", "200", map[string]any{"oneOf": []any{schemaRef(k), schemaRef("WriteResult")}},
			CodeInvalid, CodeForbidden, CodeConflict, CodeTooLarge, CodeUnsupportedMedia)
		put["responses"].(map[string]any)["201"] = map[string]any{"description": "created", "content": jsonContent(schemaRef(k))}
		put["parameters"] = []any{dryRunParam}
		put["requestBody"] = yamlOrJSON(schemaRef(k))
		del := op("Delete a "+k+" (409 while referenced)", "200", map[string]any{"oneOf": []any{schemaRef(k), schemaRef("WriteResult")}},
			CodeForbidden, CodeNotFound, CodeConflict)
		del["parameters"] = []any{dryRunParam, rvParam}
		ps[base+"/{name}"] = map[string]any{"parameters": []any{nameParam, nsParam}, "get": get, "put": put, "delete": del}
		ps[base+"/{name}/history"] = map[string]any{"parameters": []any{nameParam, nsParam},
			"get": op("Revisions of a "+k+", oldest first", "200", itemsOf(schemaRef("HistoryEntry")), CodeForbidden, CodeNotFound)}
		rb := op("Restore a "+k+" as it was at a revision", "200", schemaRef(k), CodeInvalid, CodeForbidden, CodeNotFound, CodeConflict)
		rb["requestBody"] = map[string]any{"required": true, "content": jsonContent(map[string]any{
			"type": "object", "required": []string{"revision"}, "properties": map[string]any{"revision": map[string]any{"type": "integer"}}})}
		ps[base+"/{name}/rollback"] = map[string]any{"parameters": []any{nameParam, nsParam}, "post": rb}
	}
	apply := op("Apply many objects in one transaction", "200", schemaRef("WriteResult"), CodeInvalid, CodeForbidden, CodeConflict, CodeTooLarge, CodeUnsupportedMedia)
	apply["parameters"] = []any{dryRunParam}
	apply["requestBody"] = yamlOrJSON(schemaRef("ApplyBody"))
	ps["/api/v1/apply"] = map[string]any{"post": apply}
	ps["/api/v1/dataplanes"] = map[string]any{"get": op("Connected data planes", "200", itemsOf(map[string]any{"type": "object"}))}
	create := op("Create a token (admin); the secret is shown once", "201", schemaRef("CreatedToken"), CodeInvalid, CodeForbidden, CodeConflict)
	create["requestBody"] = map[string]any{"required": true, "content": jsonContent(schemaRef("TokenRequest"))}
	ps["/api/v1/tokens"] = map[string]any{
		"get":  op("List tokens (admin)", "200", itemsOf(schemaRef("Token")), CodeForbidden),
		"post": create,
	}
	ps["/api/v1/tokens/{name}"] = map[string]any{"parameters": []any{param("name", "path", "Token name.", true, strSchema)},
		"delete": op("Delete a token (admin)", "200", schemaRef("Token"), CodeForbidden, CodeNotFound)}
	audit := op("Audit log (admin), oldest first", "200", itemsOf(schemaRef("AuditEntry")), CodeForbidden, CodeInvalid)
	audit["parameters"] = []any{param("limit", "query", "At most this many entries (1-1000, default 100).", false, map[string]any{"type": "integer"}),
		param("after", "query", "Only entries with a larger id.", false, map[string]any{"type": "integer"})}
	ps["/api/v1/audit"] = map[string]any{"get": audit}
	public := func(summary string, schema any) map[string]any {
		o := map[string]any{"summary": summary, "security": []any{},
			"responses": map[string]any{"200": map[string]any{"description": "success", "content": jsonContent(schema)}}}
		return map[string]any{"get": o}
	}
	ps["/api/v1/openapi.json"] = public("This document", map[string]any{"type": "object"})
	ps["/healthz"] = public("Liveness", map[string]any{"type": "object"})
	ps["/readyz"] = public("Readiness (503 when not ready)", map[string]any{"type": "object"})
	ps["/metrics"] = map[string]any{"get": map[string]any{"summary": "Prometheus metrics", "security": []any{},
		"responses": map[string]any{"200": map[string]any{"description": "text exposition format",
			"content": map[string]any{"text/plain": map[string]any{"schema": strSchema}}}}}}
	return ps
}

func itemsOf(item any) map[string]any {
	return map[string]any{"type": "object", "required": []string{"items"},
		"properties": map[string]any{"items": map[string]any{"type": "array", "items": item}}}
}

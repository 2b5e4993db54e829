package resource

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadFolder(t *testing.T) {
	res, err := Load("testdata/good")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := len(res.Gateways); got != 1 {
		t.Errorf("gateways = %d, want 1", got)
	}
	if got := len(res.Upstreams); got != 1 {
		t.Errorf("upstreams = %d, want 1 (the inline \"--- {...}\" document)", got)
	}
	if got := len(res.Routes); got != 3 {
		t.Errorf("routes = %d, want 3 (two from the JSON array, one from the List)", got)
	}
	if got := len(res.StreamRoutes); got != 1 {
		t.Errorf("stream routes = %d, want 1", got)
	}
	// Files are read in name order, so the JSON routes come before the List's.
	if res.Routes[0].Metadata.Name != "echo" || res.Routes[2].Metadata.Name != "policy" {
		t.Errorf("route order = %s, %s, %s", res.Routes[0].Metadata.Name, res.Routes[1].Metadata.Name, res.Routes[2].Metadata.Name)
	}

	c := res.Certificates[0]
	if !strings.HasPrefix(c.Spec.Cert, "-----BEGIN CERTIFICATE-----") || !strings.Contains(c.Spec.Key, "PRIVATE KEY") {
		t.Errorf("certificate files were not inlined: cert %q", c.Spec.Cert)
	}
	if c.Spec.CertFile != "" || c.Spec.KeyFile != "" {
		t.Errorf("file references not cleared: %q %q", c.Spec.CertFile, c.Spec.KeyFile)
	}

	// `on:` is a boolean key in YAML 1.1; it must still reach RouteRetry.On.
	policy := res.Routes[2]
	if policy.Spec.Retry == nil || len(policy.Spec.Retry.On) != 2 || policy.Spec.Retry.On[1] != "gateway-error" {
		t.Errorf("retry.on not decoded: %+v", policy.Spec.Retry)
	}
	// A number where a string is expected is taken as its text.
	if v := policy.Spec.Matches[0].Headers[0].Value; v != "8080" {
		t.Errorf("header value = %q, want \"8080\"", v)
	}

	wantOrigins := map[Key]Origin{
		{Kind: "Gateway", Name: "default"}:     {File: filepath.Join("testdata/good", "01-gateway.yaml"), Document: 1},
		{Kind: "Upstream", Name: "echo"}:       {File: filepath.Join("testdata/good", "01-gateway.yaml"), Document: 2},
		{Kind: "Route", Name: "retry"}:         {File: filepath.Join("testdata/good", "02-routes.json"), Document: 1, Item: 2},
		{Kind: "Route", Name: "policy"}:        {File: filepath.Join("testdata/good", "03-list.yml"), Document: 1, Item: 2},
		{Kind: "Certificate", Name: "example"}: {File: filepath.Join("testdata/good", "04-cert.yaml"), Document: 1},
	}
	for k, want := range wantOrigins {
		if got := res.Origins[k]; got != want {
			t.Errorf("origin of %s = %+v, want %+v", k, got, want)
		}
	}
	if got := res.Origins[Key{Kind: "Route", Name: "retry"}].String(); got != "testdata/good/02-routes.json: document 1 item 2" {
		t.Errorf("Origin.String() = %q", got)
	}
}

func TestLoadSingleFile(t *testing.T) {
	res, err := Load("testdata/good/04-cert.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Certificates) != 1 || res.Certificates[0].Spec.Cert == "" {
		t.Fatalf("certificate not loaded relative to its file: %+v", res.Certificates)
	}
}

func TestLoadMissingPath(t *testing.T) {
	_, err := Load("testdata/does-not-exist")
	var le *LoadError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "does-not-exist") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadCertificateFileProblems(t *testing.T) {
	_, err := Load("testdata/badcert")
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{
		"cert.yaml: document 1 (Certificate/mismatch): spec.certFile: invalid certificate or key: tls: private key does not match public key",
		"cert.yaml: document 2 (Certificate/missing): spec.certFile: open testdata/badcert/nope.crt: no such file or directory",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestParseDoesNotReadFiles(t *testing.T) {
	res, err := Parse("testdata/good/04-cert.yaml", []byte(`
apiVersion: portico.dev/v1alpha1
kind: Certificate
metadata: {name: example}
spec: {certFile: certs/example.crt, keyFile: certs/example.key}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Certificates[0]; c.Spec.Cert != "" || c.Spec.CertFile != "certs/example.crt" {
		t.Fatalf("Parse read a file: %+v", c.Spec)
	}
}

// problems parses input that must fail and returns its problems as strings.
func problems(t *testing.T, name, input string) []string {
	t.Helper()
	_, err := Parse(name, []byte(input))
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want a *LoadError, got %v", err)
	}
	var out []string
	for _, p := range le.Problems {
		out = append(out, p.String())
	}
	if got := err.Error(); got != strings.Join(out, "\n") {
		t.Errorf("Error() = %q, want the problems one a line", got)
	}
	return out
}

func expectProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

const upstreamDoc = `apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: echo}
spec: {endpoints: [{address: "127.0.0.1:9001"}]}
`

func TestValidationProblem(t *testing.T) {
	got := problems(t, "examples/bad.yaml", upstreamDoc+`---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: echo}
spec:
  matches: [{path: {type: Exact, value: echo}}]
  backends: [{upstream: echo, weight: -1}]
`)
	expectProblems(t, got,
		`examples/bad.yaml: document 2 (Route/echo): spec.matches[0].path.value: must start with "/"`,
		`examples/bad.yaml: document 2 (Route/echo): spec.backends[0].weight: must be between 0 and 1000000, got -1`)
}

func TestUnknownFieldsWithPaths(t *testing.T) {
	got := problems(t, "x.yaml", `apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: echo, lables: {a: b}}
spec:
  Hosts: [a.example.com]
  matches: [{path: {value: /}}, {pathh: {value: /x}}]
  backends: [{upstream: echo}]
`)
	expectProblems(t, got,
		`x.yaml: document 1 (Route/echo): metadata.lables: unknown field`,
		`x.yaml: document 1 (Route/echo): spec.Hosts: unknown field (did you mean "hosts"?)`,
		`x.yaml: document 1 (Route/echo): spec.matches[1].pathh: unknown field`)
}

func TestMalformedYAMLNamesDocumentAndLine(t *testing.T) {
	got := problems(t, "x.yaml", upstreamDoc+"---\nkind: Route\nmetadata: {name: [unclosed\n")
	if len(got) != 1 || !strings.HasPrefix(got[0], "x.yaml: document 2: invalid YAML: ") || !strings.Contains(got[0], "line 7") {
		t.Fatalf("got %q", got)
	}
}

func TestDecodeProblems(t *testing.T) {
	got := problems(t, "x.yaml", `apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec: {listeners: [{name: http, port: eighty, protocol: HTTP}]}
---
apiVersion: portico.dev/v1alpha1
kind: Widget
metadata: {name: w}
---
metadata: {name: nokind}
---
- just
- strings
---
plain scalar
`)
	expectProblems(t, got,
		`x.yaml: document 1 (Gateway/default): spec.listeners.port: expected int32, got string`,
		`x.yaml: document 2 (Widget/w): kind: unknown kind "Widget": one of Gateway, Certificate, Upstream, Route, StreamRoute, Consumer, Plugin`,
		`x.yaml: document 3: kind: required`,
		`x.yaml: document 4 item 1: expected an object, got a string`,
		`x.yaml: document 4 item 2: expected an object, got a string`,
		`x.yaml: document 5: expected an object or a list of objects, got a string`)
}

func TestDuplicateNames(t *testing.T) {
	ns := strings.Replace(upstreamDoc, "{name: echo}", "{name: echo, namespace: other}", 1)
	got := problems(t, "x.yaml", upstreamDoc+"---\n"+upstreamDoc+"---\n"+ns)
	expectProblems(t, got,
		`x.yaml: document 2 (Upstream/echo): metadata.name: duplicate Upstream "echo": first defined at x.yaml: document 1`)
}

func TestJSONInput(t *testing.T) {
	res, err := Parse("api-request", []byte(`{"apiVersion": "portico.dev/v1alpha1", "kind": "List", "items": [
		{"apiVersion": "portico.dev/v1alpha1", "kind": "Upstream", "metadata": {"name": "a"}, "spec": {"endpoints": [{"address": "10.0.0.1:80"}]}}]}`))
	if err != nil || len(res.Upstreams) != 1 {
		t.Fatalf("res %+v, err %v", res, err)
	}
	got := problems(t, "bad.json", "[\n{\"kind\": \"Upstream\",\n \"metadata\": }\n]")
	if len(got) != 1 || !strings.HasPrefix(got[0], "bad.json: document 1: invalid JSON: line 3: ") {
		t.Fatalf("got %q", got)
	}
	got = problems(t, "two.json", `{"kind": "Upstream"} {"kind": "Route"}`)
	if len(got) != 1 || !strings.Contains(got[0], "unexpected data after the top-level value") {
		t.Fatalf("got %q", got)
	}
}

func TestEmptyInput(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "---\n---\n", "null\n"} {
		res, err := Parse("empty.yaml", []byte(in))
		if err != nil || len(res.Routes)+len(res.Gateways) != 0 {
			t.Errorf("Parse(%q) = %+v, %v", in, res, err)
		}
	}
}

// Invalid objects are still returned with the error, so a caller can show statuses.
func TestPartialResultOnError(t *testing.T) {
	res, err := Parse("x.yaml", []byte(upstreamDoc+"---\n"+strings.Replace(upstreamDoc, "127.0.0.1:9001", "nope", 1)))
	if err == nil || len(res.Upstreams) != 2 {
		t.Fatalf("res %d upstreams, err %v", len(res.Upstreams), err)
	}
}

func TestSplitYAMLLines(t *testing.T) {
	docs := splitYAML([]byte("# c\n---\na: 1\n---\n\n--- # x\nb: 2\n...\n# after end\n---\nc: 3"))
	if len(docs) != 3 {
		t.Fatalf("got %d documents: %v", len(docs), docs)
	}
	if docs[0].line != 2 || docs[1].line != 6 || docs[2].line != 10 {
		t.Errorf("start lines = %d, %d, %d", docs[0].line, docs[1].line, docs[2].line)
	}
}

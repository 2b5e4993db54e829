package resource

import (
	"errors"
	"strings"
	"testing"
)

const pluginsInput = `
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: alice}
spec:
  credentials: [{type: key-auth, key: alice-secret-key}]
  groups: [admins]
  plugins: [{name: rate-limit, config: {requests: 10, window: 1m}}]
---
apiVersion: portico.dev/v1alpha1
kind: Plugin
metadata: {name: cors}
spec:
  plugin: cors
  config: {allowOrigins: ["*"], nested: {deep: true}}
---
apiVersion: portico.dev/v1alpha1
kind: Plugin
metadata: {name: limit-echo}
spec:
  plugin: rate-limit
  attachTo: {kind: Route, name: echo}
`

func TestParseConsumersAndPlugins(t *testing.T) {
	res, err := Parse("in.yaml", []byte(pluginsInput))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Consumers) != 1 || len(res.Plugins) != 2 {
		t.Fatalf("consumers %d, plugins %d", len(res.Consumers), len(res.Plugins))
	}
	c := res.Consumers[0]
	if c.Spec.Credentials[0].Key != "alice-secret-key" || c.Spec.Groups[0] != "admins" || c.Spec.Plugins[0].Config["requests"] != float64(10) {
		t.Errorf("consumer decoded as %+v", c.Spec)
	}
	if p := res.Plugins[1]; p.Spec.AttachTo == nil || p.Spec.AttachTo.Kind != "Route" || p.Spec.AttachTo.Name != "echo" {
		t.Errorf("attachTo decoded as %+v", p.Spec.AttachTo)
	}
	if o := res.Origins[Key{Kind: "Plugin", Name: "limit-echo"}]; o.Document != 3 {
		t.Errorf("origin = %+v", o)
	}
}

func TestConsumerAndPluginProblems(t *testing.T) {
	in := `
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: bob}
spec:
  credentials: [{type: key-auth, key: short, salt: x}, {type: magic}]
  groups: [""]
---
apiVersion: portico.dev/v1alpha1
kind: Plugin
metadata: {name: p}
spec:
  attachTo: {kind: Listener, name: x}
---
apiVersion: portico.dev/v1alpha1
kind: Plugin
metadata: {name: p}
spec:
  plugin: cors
`
	_, err := Parse("in.yaml", []byte(in))
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		`in.yaml: document 1 (Consumer/bob): spec.credentials[0].salt: unknown field`,
		`in.yaml: document 2 (Plugin/p): spec.plugin: required`,
		`in.yaml: document 2 (Plugin/p): spec.attachTo.kind: unknown kind "Listener": one of Gateway, Route, Upstream`,
		`in.yaml: document 3 (Plugin/p): metadata.name: duplicate Plugin "p": first defined at in.yaml: document 2`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
	// The consumer fails strict decoding, so its validation is not reached; a
	// decodable one reports credential and group problems by field.
	_, err = Parse("in.yaml", []byte(`
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: bob}
spec:
  credentials: [{type: key-auth, key: short}, {type: magic}]
  groups: [""]
`))
	for _, w := range []string{
		"spec.credentials[0].key: must be at least 8 characters, got 5",
		`spec.credentials[1].type: unknown credential type "magic": one of key-auth`,
		"spec.groups[0]: must not be empty",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "short") {
		t.Errorf("a problem repeats the key: %v", err)
	}
}

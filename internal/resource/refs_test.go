package resource

import (
	"strings"
	"testing"
)

const refsInput = `
apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: edge, namespace: a}
spec:
  listeners:
  - {name: https, port: 8443, protocol: HTTPS, tls: {certificateRefs: [site, gone]}}
---
apiVersion: portico.dev/v1alpha1
kind: Certificate
metadata: {name: site, namespace: a}
spec: {certFile: site.crt, keyFile: site.key}
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: u, namespace: a}
spec: {endpoints: [{address: "127.0.0.1:1"}]}
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: u2}
spec: {endpoints: [{address: "127.0.0.1:1"}]}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: r, namespace: a}
spec:
  backends: [{upstream: u}, {upstream: u2}]
  mirror: {upstream: shadow}
---
apiVersion: portico.dev/v1alpha1
kind: StreamRoute
metadata: {name: s, namespace: a}
spec: {listener: tcp, backends: [{upstream: u}]}
---
apiVersion: portico.dev/v1alpha1
kind: Plugin
metadata: {name: p, namespace: a}
spec: {plugin: cors, attachTo: {kind: Route, name: nope}}
`

func TestCheckReferences(t *testing.T) {
	res, err := Parse("refs.yaml", []byte(refsInput))
	if err != nil {
		t.Fatal(err)
	}
	keys := []Key{
		{Kind: "Gateway", Namespace: "a", Name: "edge"},
		{Kind: "Route", Namespace: "a", Name: "r"},
		{Kind: "StreamRoute", Namespace: "a", Name: "s"},
		{Kind: "Plugin", Namespace: "a", Name: "p"},
		{Kind: "Certificate", Namespace: "a", Name: "site"},
	}
	var got []string
	for _, p := range CheckReferences(res, keys) {
		got = append(got, Key{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}.String()+" "+p.Field+": "+p.Message)
	}
	want := []string{
		`Gateway/a/edge spec.listeners[0].tls.certificateRefs[1]: Certificate "gone" not found in namespace "a"`,
		// u2 exists, but without a namespace: references resolve in the route's namespace.
		`Route/a/r spec.backends[1].upstream: Upstream "u2" not found in namespace "a"`,
		`Route/a/r spec.mirror.upstream: Upstream "shadow" not found in namespace "a"`,
		`Plugin/a/p spec.attachTo.name: Route "nope" not found in namespace "a"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A delete: the key is absent from the resources, its referrers are reported.
	gone := Key{Kind: "Upstream", Namespace: "a", Name: "u"}
	res.Upstreams = res.Upstreams[1:] // drop a/u
	if res.Upstreams[0].Metadata.Name != "u2" {
		t.Fatal("test setup: expected u2 to remain")
	}
	probs := CheckReferences(res, []Key{gone})
	if len(probs) != 2 || probs[0].Kind != "Route" || probs[0].Field != "spec.backends[0].upstream" ||
		probs[1].Kind != "StreamRoute" || !strings.Contains(probs[1].Message, "Upstream/a/u") {
		t.Errorf("delete problems = %+v", probs)
	}
	refs := ReferencedBy(res, gone)
	if len(refs) != 2 || refs[0].From.Name != "r" || refs[1].From.Name != "s" {
		t.Errorf("ReferencedBy = %+v", refs)
	}
	if n := len(ReferencedBy(res, Key{Kind: "Upstream", Name: "u2"})); n != 0 {
		t.Errorf("u2 (no namespace) referenced %d times; references resolve in the referrer's namespace", n)
	}
}

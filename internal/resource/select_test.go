package resource

import (
	"slices"
	"testing"

	"portico.dev/portico/api/v1alpha1"
)

const selectInput = `apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec: {listeners: [{name: http, port: 8080, protocol: HTTP}]}
---
apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: edge}
spec:
  listeners:
    - {name: https, port: 8443, protocol: HTTPS, tls: {certificateRefs: [edge-cert]}}
    - {name: tcp, port: 9000, protocol: TCP}
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: a}
spec: {endpoints: [{address: "127.0.0.1:1"}]}
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: b}
spec: {endpoints: [{address: "127.0.0.1:2"}]}
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: m}
spec: {endpoints: [{address: "127.0.0.1:3"}]}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: on-default}
spec: {backends: [{upstream: b}]}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: on-edge}
spec: {gateways: [edge], backends: [{upstream: a}], mirror: {upstream: m, percent: 10}}
---
apiVersion: portico.dev/v1alpha1
kind: StreamRoute
metadata: {name: l4}
spec: {gateways: [edge], listener: tcp, backends: [{upstream: b}]}
---
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: alice}
spec: {credentials: [{type: key-auth, key: alice-key-1}]}
---
apiVersion: portico.dev/v1alpha1
kind: Plugin
metadata: {name: global}
spec: {plugin: request-id}
---
apiVersion: portico.dev/v1alpha1
kind: Plugin
metadata: {name: on-default-route}
spec: {plugin: request-id, attachTo: {kind: Route, name: on-default}}
---
apiVersion: portico.dev/v1alpha1
kind: Plugin
metadata: {name: on-edge-gw}
spec: {plugin: request-id, attachTo: {kind: Gateway, name: edge}}
`

func names[T any](items []T, name func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	return out
}

func TestSelectKeepsTheGatewayAndWhatItReferences(t *testing.T) {
	res, err := Parse("select.yaml", []byte(selectInput))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"edge-cert", "other-cert"} {
		res.Add(&v1alpha1.Certificate{Metadata: v1alpha1.ObjectMeta{Name: name}})
	}
	if res.Select(nil) != res {
		t.Fatal("Select with no names must return everything")
	}
	edge := res.Select([]string{"edge"})
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	check("gateways", names(edge.Gateways, func(g *v1alpha1.Gateway) string { return g.Metadata.Name }), []string{"edge"})
	check("routes", names(edge.Routes, func(r *v1alpha1.Route) string { return r.Metadata.Name }), []string{"on-edge"})
	check("streamRoutes", names(edge.StreamRoutes, func(r *v1alpha1.StreamRoute) string { return r.Metadata.Name }), []string{"l4"})
	check("upstreams", names(edge.Upstreams, func(u *v1alpha1.Upstream) string { return u.Metadata.Name }), []string{"a", "b", "m"})
	check("certificates", names(edge.Certificates, func(c *v1alpha1.Certificate) string { return c.Metadata.Name }), []string{"edge-cert"})
	check("plugins", names(edge.Plugins, func(p *v1alpha1.Plugin) string { return p.Metadata.Name }), []string{"global", "on-edge-gw"})
	check("consumers", names(edge.Consumers, func(c *v1alpha1.Consumer) string { return c.Metadata.Name }), []string{"alice"})

	def := res.Select([]string{"default"})
	check("default routes", names(def.Routes, func(r *v1alpha1.Route) string { return r.Metadata.Name }), []string{"on-default"})
	check("default upstreams", names(def.Upstreams, func(u *v1alpha1.Upstream) string { return u.Metadata.Name }), []string{"b"})
	check("default plugins", names(def.Plugins, func(p *v1alpha1.Plugin) string { return p.Metadata.Name }), []string{"global", "on-default-route"})
	check("default certificates", names(def.Certificates, func(c *v1alpha1.Certificate) string { return c.Metadata.Name }), nil)

	if none := res.Select([]string{"missing"}); len(none.Gateways)+len(none.Routes)+len(none.Upstreams) != 0 {
		t.Errorf("an unknown gateway selected objects: %+v", none)
	}
}

package resource

import "portico.dev/portico/api/v1alpha1"

// Select returns the part of r that a data plane serving the named gateways needs: those
// Gateways, the Routes and StreamRoutes attached to them, the Upstreams and Certificates
// these reference, the Plugins that are global or attached to a selected object, and every
// Consumer (authentication plugins look consumers up by credential, not by reference).
//
// A gateway is named "name" or "namespace/name"; routes find their gateways in their own
// namespace, as translation does. Select with no names returns r itself. The objects are
// shared with r, not copied: treat both as read-only.
func (r *Resources) Select(gateways []string) *Resources {
	if len(gateways) == 0 {
		return r
	}
	want := make(map[nsName]bool, len(gateways))
	for _, g := range gateways {
		want[parseNSName(g)] = true
	}
	out := &Resources{Consumers: r.Consumers, Origins: r.Origins, Validated: r.Validated}
	gws := map[nsName]bool{}
	for _, g := range r.Gateways {
		k := nsName{g.Metadata.Namespace, g.Metadata.Name}
		if want[k] || (k.ns != "" && want[nsName{"", k.name}]) {
			gws[k] = true
			out.Gateways = append(out.Gateways, g)
		}
	}
	attached := func(ns string, names []string) bool {
		if len(names) == 0 {
			names = []string{v1alpha1.DefaultGateway}
		}
		for _, n := range names {
			if gws[nsName{ns, n}] {
				return true
			}
		}
		return false
	}
	upstreams, routes := map[nsName]bool{}, map[nsName]bool{}
	for _, rt := range r.Routes {
		if !attached(rt.Metadata.Namespace, rt.Spec.Gateways) {
			continue
		}
		out.Routes = append(out.Routes, rt)
		routes[nsName{rt.Metadata.Namespace, rt.Metadata.Name}] = true
		for _, b := range rt.Spec.Backends {
			upstreams[nsName{rt.Metadata.Namespace, b.Upstream}] = true
		}
		if rt.Spec.Mirror != nil {
			upstreams[nsName{rt.Metadata.Namespace, rt.Spec.Mirror.Upstream}] = true
		}
	}
	for _, sr := range r.StreamRoutes {
		if !attached(sr.Metadata.Namespace, sr.Spec.Gateways) {
			continue
		}
		out.StreamRoutes = append(out.StreamRoutes, sr)
		for _, b := range sr.Spec.Backends {
			upstreams[nsName{sr.Metadata.Namespace, b.Upstream}] = true
		}
	}
	for _, u := range r.Upstreams {
		if upstreams[nsName{u.Metadata.Namespace, u.Metadata.Name}] {
			out.Upstreams = append(out.Upstreams, u)
		}
	}
	certs := map[nsName]bool{}
	for _, g := range out.Gateways {
		for _, l := range g.Spec.Listeners {
			if l.TLS == nil {
				continue
			}
			for _, c := range l.TLS.CertificateRefs {
				certs[nsName{g.Metadata.Namespace, c}] = true
			}
		}
	}
	for _, c := range r.Certificates {
		if certs[nsName{c.Metadata.Namespace, c.Metadata.Name}] {
			out.Certificates = append(out.Certificates, c)
		}
	}
	for _, p := range r.Plugins {
		a := p.Spec.AttachTo
		if a == nil {
			out.Plugins = append(out.Plugins, p)
			continue
		}
		target := nsName{p.Metadata.Namespace, a.Name}
		if (a.Kind == v1alpha1.KindGateway && gws[target]) || (a.Kind == v1alpha1.KindRoute && routes[target]) ||
			(a.Kind == v1alpha1.KindUpstream && upstreams[target]) {
			out.Plugins = append(out.Plugins, p)
		}
	}
	return out
}

// nsName is a namespaced name.
type nsName struct{ ns, name string }

// parseNSName reads "name" or "namespace/name".
func parseNSName(s string) nsName {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return nsName{s[:i], s[i+1:]}
		}
	}
	return nsName{"", s}
}

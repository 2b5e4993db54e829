package convert

import (
	"fmt"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"portico.dev/portico/api/v1alpha1"
)

// tlsRoutes converts TLSRoutes to StreamRoutes on TLS passthrough listeners, selected
// by SNI.
func (g *gwConv) tlsRoutes() {
	for _, r := range gwSorted(g.objs.TLSRoutes) {
		var refs [][]gwv1.BackendRef
		for _, rule := range r.Spec.Rules {
			refs = append(refs, rule.BackendRefs)
		}
		g.streamRoute(newRouteInfo(kindTLSRoute, &r.ObjectMeta, r.Spec.Hostnames, true), r.Spec.ParentRefs, refs)
	}
}

// tcpRoutes converts TCPRoutes to StreamRoutes on TCP listeners.
func (g *gwConv) tcpRoutes() {
	for _, r := range gwSorted(g.objs.TCPRoutes) {
		var refs [][]gwv1.BackendRef
		for _, rule := range r.Spec.Rules {
			refs = append(refs, rule.BackendRefs)
		}
		g.streamRoute(newRouteInfo(kindTCPRoute, &r.ObjectMeta, nil, false), r.Spec.ParentRefs, refs)
	}
}

// udpRoutes converts UDPRoutes to StreamRoutes on UDP listeners.
func (g *gwConv) udpRoutes() {
	for _, r := range gwSorted(g.objs.UDPRoutes) {
		var refs [][]gwv1.BackendRef
		for _, rule := range r.Spec.Rules {
			refs = append(refs, rule.BackendRefs)
		}
		g.streamRoute(newRouteInfo(kindUDPRoute, &r.ObjectMeta, nil, false), r.Spec.ParentRefs, refs)
	}
}

// streamRoute makes one StreamRoute per listener a route attaches to, in the
// Gateway's namespace. The backends of every rule are pooled (L4 rules have no
// matches). With no usable backend no StreamRoute is made: connections are refused.
func (g *gwConv) streamRoute(info routeInfo, parents []gwv1.ParentReference, rules [][]gwv1.BackendRef) {
	rs := g.attach(info, parents)
	if len(rs.parents) == 0 {
		return
	}
	var backends []svcBackend
	for i, refs := range rules {
		for j, br := range refs {
			if b, ok := g.resolveBackend(rs, fmt.Sprintf("spec.rules[%d].backendRefs[%d]", i, j), br.BackendObjectReference, br.Weight); ok {
				backends = append(backends, b)
			}
		}
	}
	rs.markAttached()
	if rs.accepted() {
		for _, a := range rs.attachments {
			ns := a.gw.obj.Namespace
			list, abort := g.l4Backends(ns, backends)
			if abort {
				continue
			}
			for _, m := range a.matches {
				g.out.Resources.StreamRoutes = append(g.out.Resources.StreamRoutes, &v1alpha1.StreamRoute{
					TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindStreamRoute},
					Metadata: v1alpha1.ObjectMeta{Namespace: ns, Name: objectName(info.key, a.gw.obj.Name, string(m.l.spec.Name)),
						CreationTimestamp: info.created},
					Spec: v1alpha1.StreamRouteSpec{Gateways: []string{a.gw.obj.Name}, Listener: string(m.l.spec.Name), SNI: m.hosts, Backends: list},
				})
			}
		}
	}
	g.writeStatus(rs)
}

// l4Backends places a stream route's backends in namespace ns; abort when none is usable.
func (g *gwConv) l4Backends(ns string, bs []svcBackend) ([]v1alpha1.Backend, bool) {
	list, abort := g.backendList(ns, bs, 1, false, false)
	return list, abort || len(list) == 0
}

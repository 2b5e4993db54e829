package convert

import (
	"sort"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"portico.dev/portico/api/v1alpha1"
)

// svcBackend is a backendRef resolved to a Service port.
type svcBackend struct {
	namespace, service string
	port               int32
	weight             *int32
	// found is false when the Service or its port does not exist: the Upstream then has
	// no endpoints, and its share of requests fails.
	found bool
}

// resolveBackend checks one backendRef of a route: a core Service (InvalidKind
// otherwise), in the route's namespace or allowed by a ReferenceGrant (RefNotPermitted),
// that exists (BackendNotFound). ok is false when nothing may be sent to it.
func (g *gwConv) resolveBackend(rs *routeResult, field string, ref gwv1.BackendObjectReference, weight *int32) (svcBackend, bool) {
	grp, kind := refGroup(ref.Group, ""), refKind(ref.Kind, "Service")
	ns := string(gwDeref(ref.Namespace, gwv1.Namespace(rs.info.key.Namespace)))
	switch {
	case grp != "" || kind != "Service":
		rs.unresolved(string(gwv1.RouteReasonInvalidKind), "%s: kind %q (group %q) is not supported: only Services", field, kind, grp)
		return svcBackend{}, false
	case !g.refAllowed(gatewayGroup, rs.info.key.Kind, rs.info.key.Namespace, "", "Service", ns, string(ref.Name)):
		rs.unresolved(string(gwv1.RouteReasonRefNotPermitted), "%s: Service %s/%s is in another namespace and no ReferenceGrant allows it", field, ns, ref.Name)
		return svcBackend{}, false
	case ref.Port == nil:
		rs.unresolved(string(gwv1.RouteReasonUnsupportedValue), "%s: a Service backend needs a port", field)
		return svcBackend{}, false
	}
	b := svcBackend{namespace: ns, service: string(ref.Name), port: int32(*ref.Port), weight: weight}
	if svc := g.findService(ns, b.service); svc != nil && findServicePort(svc, ServicePort{Number: b.port}) != nil {
		b.found = true
	} else if svc == nil {
		rs.unresolved(string(gwv1.RouteReasonBackendNotFound), "%s: Service %s/%s not found", field, ns, ref.Name)
	} else {
		rs.unresolved(string(gwv1.RouteReasonBackendNotFound), "%s: Service %s/%s has no port %d", field, ns, ref.Name, b.port)
	}
	return b, true
}

// upstreamFor returns the Upstream, in namespace gwNS (where the Portico route is), for
// a Service backend. grpc selects HTTP/2 without TLS (h2c); a Service port with
// appProtocol kubernetes.io/h2c does the same. http applies the Service's
// BackendTLSPolicy (l4 routes pass bytes through and ignore it). The Upstream made by
// serviceUpstream is used as is when it fits; otherwise a copy is made in gwNS, named
// "<service namespace>.<name>" across namespaces, with "-btls" appended under a
// BackendTLSPolicy.
func (g *gwConv) upstreamFor(gwNS string, b svcBackend, grpc, http bool) string {
	protocol := ""
	if svc := g.findService(b.namespace, b.service); svc != nil {
		if sp := findServicePort(svc, ServicePort{Number: b.port}); sp != nil && sp.AppProtocol != nil && *sp.AppProtocol == "kubernetes.io/h2c" {
			protocol = v1alpha1.UpstreamH2C
		}
	}
	if grpc {
		protocol = v1alpha1.UpstreamH2C
	}
	var policy *gwv1.BackendTLSPolicy
	if http {
		policy = g.backendTLSPolicy(b.namespace, b.service, b.port)
	}
	name, _ := g.serviceUpstream(b.namespace, b.service, ServicePort{Number: b.port}, protocol)
	if policy == nil && gwNS == b.namespace {
		return name
	}
	local := name
	if policy != nil {
		local += "-btls"
	}
	if gwNS != b.namespace {
		local = b.namespace + "." + local
	}
	key := types.NamespacedName{Namespace: gwNS, Name: local}
	if g.backends.upstreams[key] != nil {
		return local
	}
	cp := *g.upstream(b.namespace, name)
	cp.Metadata = v1alpha1.ObjectMeta{Name: local, Namespace: gwNS}
	if policy != nil {
		cp.Spec.Protocol = v1alpha1.UpstreamHTTPS
		if protocol == v1alpha1.UpstreamH2C {
			cp.Spec.Protocol = v1alpha1.UpstreamH2
		}
		// The system roots verify the endpoints, named by validation.hostname. CA
		// certificates in ConfigMaps (caCertificateRefs) cannot be read yet: the system
		// roots are used then too, so a private CA fails closed.
		cp.Spec.TLS = &v1alpha1.UpstreamTLS{SNI: string(policy.Spec.Validation.Hostname)}
	}
	g.backends.upstreams[key] = &cp
	g.addUpstream(&cp)
	return local
}

// backendTLSPolicy returns the BackendTLSPolicy for a Service port: the oldest policy
// (then by name) in the Service's namespace whose targetRefs name the Service, with no
// sectionName or the port's name.
func (g *gwConv) backendTLSPolicy(ns, service string, port int32) *gwv1.BackendTLSPolicy {
	portName := ""
	if svc := g.findService(ns, service); svc != nil {
		if sp := findServicePort(svc, ServicePort{Number: port}); sp != nil {
			portName = sp.Name
		}
	}
	var found []*gwv1.BackendTLSPolicy
	for _, p := range g.objs.BackendTLSPolicies {
		if p.Namespace != ns {
			continue
		}
		for _, t := range p.Spec.TargetRefs {
			if t.Group == "" && t.Kind == "Service" && string(t.Name) == service && (t.SectionName == nil || string(*t.SectionName) == portName) {
				found = append(found, p)
				break
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
	return found[0]
}

// backendList turns resolved backends into Portico backends for a route in gwNS. When
// no backend was usable though some were named, abort answers every request with 500,
// as the Gateway API requires.
func (g *gwConv) backendList(gwNS string, bs []svcBackend, named int, grpc, http bool) (out []v1alpha1.Backend, abort bool) {
	anyFound := false
	for _, b := range bs {
		anyFound = anyFound || b.found
	}
	if named > 0 && !anyFound {
		return nil, true
	}
	for _, b := range bs {
		out = append(out, v1alpha1.Backend{Upstream: g.upstreamFor(gwNS, b, grpc, http), Weight: b.weight})
	}
	return out, false
}

// abortFault answers every request with 500 (a rule whose backends are all invalid).
func abortFault() *v1alpha1.Fault {
	return &v1alpha1.Fault{Abort: &v1alpha1.FaultAbort{Status: 500, Percent: 100}}
}

package convert

import (
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"portico.dev/portico/api/v1alpha1"
)

// backendState is what services.go and secrets.go have made so far in one conversion:
// each Upstream and Certificate once, however many Ingresses or routes refer to it.
type backendState struct {
	upstreams map[types.NamespacedName]*v1alpha1.Upstream
	certs     map[types.NamespacedName]*v1alpha1.Certificate
}

// ServicePort names a Service port by number or by name (set exactly one), as an
// Ingress backend does; a Gateway API backendRef sets Number.
type ServicePort struct {
	Number int32
	Name   string
}

// String renders the port as it appears in Upstream names: the number, or the name.
func (p ServicePort) String() string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

// serviceUpstream returns the name of the Portico Upstream, in namespace, that sends
// to service's port: the ready addresses of the Service's EndpointSlices for that port
// (requests go straight to the pods, no kube-proxy hop). protocol is an Upstream
// protocol ("" or v1alpha1.UpstreamHTTP, UpstreamH2C, UpstreamHTTPS, UpstreamH2); https
// and h2 do not verify the pods' certificates (as ingress-nginx's default).
//
// The Upstream is named "svc-<service>-<port>" (port number or name), with
// "-<protocol>" appended for a protocol other than http, and is added to the Resources
// the first time it is asked for. ok is false when the Service or its port does not
// exist; the Upstream then exists with no endpoints (Portico answers 503), as it does
// when no endpoint is ready. Callers must ask in a deterministic order.
func (c *converter) serviceUpstream(namespace, service string, port ServicePort, protocol string) (name string, ok bool) {
	if protocol == v1alpha1.UpstreamHTTP {
		protocol = ""
	}
	name = "svc-" + service + "-" + strings.ToLower(port.String())
	if protocol != "" {
		name += "-" + protocol
	}
	svc := c.findService(namespace, service)
	var sp *corev1.ServicePort
	if svc != nil {
		sp = findServicePort(svc, port)
	}
	ok = sp != nil
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if c.backends.upstreams == nil {
		c.backends.upstreams = map[types.NamespacedName]*v1alpha1.Upstream{}
	}
	if c.backends.upstreams[key] != nil {
		return name, ok
	}
	u := &v1alpha1.Upstream{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindUpstream},
		Metadata: v1alpha1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:     v1alpha1.UpstreamSpec{Protocol: protocol},
	}
	if protocol == v1alpha1.UpstreamHTTPS || protocol == v1alpha1.UpstreamH2 {
		u.Spec.TLS = &v1alpha1.UpstreamTLS{InsecureSkipVerify: true}
	}
	if sp != nil {
		u.Spec.Endpoints = c.readyEndpoints(namespace, service, sp.Name)
	}
	c.backends.upstreams[key] = u
	c.addUpstream(u)
	return name, ok
}

// upstream returns an Upstream serviceUpstream made (nil if none), to adjust it.
func (c *converter) upstream(namespace, name string) *v1alpha1.Upstream {
	return c.backends.upstreams[types.NamespacedName{Namespace: namespace, Name: name}]
}

// addUpstream adds u to the Resources. An Upstream with no endpoints is valid here
// (the data plane answers 503 until endpoints appear), though a file would need one:
// its validation result, without that one complaint, is recorded in Resources.Validated.
func (c *converter) addUpstream(u *v1alpha1.Upstream) {
	res := c.out.Resources
	res.Upstreams = append(res.Upstreams, u)
	if len(u.Spec.Endpoints) > 0 {
		return
	}
	var errs []v1alpha1.FieldError
	for _, e := range u.Validate() {
		if e.Field != "spec.endpoints" {
			errs = append(errs, e)
		}
	}
	if res.Validated == nil {
		res.Validated = map[v1alpha1.Object][]v1alpha1.FieldError{}
	}
	res.Validated[u] = errs
}

func (c *converter) findService(namespace, name string) *corev1.Service {
	for _, s := range c.objs.Services {
		if s.Namespace == namespace && s.Name == name {
			return s
		}
	}
	return nil
}

// findServicePort finds a Service port by number (spec.ports[].port) or by name.
func findServicePort(svc *corev1.Service, port ServicePort) *corev1.ServicePort {
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (port.Name != "" && p.Name == port.Name) || (port.Name == "" && p.Port == port.Number) {
			return p
		}
	}
	return nil
}

// readyEndpoints lists "address:port" for every ready endpoint of the Service's
// EndpointSlices (label kubernetes.io/service-name) on the slice port named portName
// (the slice port's number is the target port). Ready unset counts as ready, as the
// EndpointSlice API says; terminating endpoints are not ready. The zone becomes the
// "zone" label. Sorted, without duplicates.
func (c *converter) readyEndpoints(namespace, service, portName string) []v1alpha1.Endpoint {
	seen := map[string]bool{}
	var out []v1alpha1.Endpoint
	for _, es := range c.objs.EndpointSlices {
		if es.Namespace != namespace || es.Labels[discoveryv1.LabelServiceName] != service {
			continue
		}
		var port int32
		for _, p := range es.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name == portName && p.Port != nil {
				port = *p.Port
				break
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				addr := net.JoinHostPort(a, strconv.Itoa(int(port)))
				if seen[addr] {
					continue
				}
				seen[addr] = true
				e := v1alpha1.Endpoint{Address: addr}
				if ep.Zone != nil && *ep.Zone != "" {
					e.Labels = map[string]string{"zone": *ep.Zone}
				}
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

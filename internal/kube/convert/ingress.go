package convert

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"portico.dev/portico/api/v1alpha1"
)

// The Gateways every namespace with Ingresses gets. Portico resolves a Route's gateways
// in the Route's own namespace, so the Ingress conversion writes one pair per namespace;
// their listeners share the sockets (same address, port and protocol), so together they
// are one :80 and one :443, the latter serving every namespace's certificates by SNI.
const (
	// IngressGateway holds the HTTP listener "http" on port 80.
	IngressGateway = "ingress"
	// IngressGatewayHTTPS holds the HTTPS listener "https" on port 443; it exists in a
	// namespace when an Ingress there has a usable TLS Secret.
	IngressGatewayHTTPS = "ingress-https"
)

// Annotations read on IngressClasses and Ingresses.
const (
	annDefaultClass = networkingv1.AnnotationIsDefaultIngressClass // ingressclass.kubernetes.io/is-default-class
	annLegacyClass  = "kubernetes.io/ingress.class"
)

// ingressRoute is one Route being built, with what canaries and redirects need.
type ingressRoute struct {
	route    *v1alpha1.Route
	redirect bool // the route has a twin redirecting :80 to https
}

// ingressNamespace is what the conversion gathers per namespace.
type ingressNamespace struct {
	certs  []string
	routes []*v1alpha1.Route
}

// ingresses converts the Ingresses of Portico's IngressClasses.
func (c *converter) ingresses() {
	served := c.servedIngresses()
	if len(served) == 0 {
		return
	}
	namespaces := map[string]*ingressNamespace{}
	nsOf := func(ns string) *ingressNamespace {
		if namespaces[ns] == nil {
			namespaces[ns] = &ingressNamespace{}
		}
		return namespaces[ns]
	}
	var mains, canaries []*networkingv1.Ingress
	for _, ing := range served {
		c.out.Ingresses[keyOf(ing)] = c.ingressStatus()
		nsOf(ing.Namespace)
		if annotationBool(ing, "canary") {
			canaries = append(canaries, ing)
		} else {
			mains = append(mains, ing)
		}
	}
	// Certificates first: whether a namespace has HTTPS decides where routes attach.
	for _, ing := range mains {
		for i, t := range ing.Spec.TLS {
			if t.SecretName == "" {
				c.warn(ing, "spec.tls[%d]: no secretName: skipped", i)
				continue
			}
			name, err := c.tlsCertificate(ing.Namespace, t.SecretName, t.Hosts)
			if err != nil {
				c.warn(ing, "spec.tls[%d]: %v: skipped", i, err)
				continue
			}
			ns := nsOf(ing.Namespace)
			if !contains(ns.certs, name) {
				ns.certs = append(ns.certs, name)
			}
		}
	}
	connect := map[*v1alpha1.Upstream]time.Duration{}
	byMatch := map[string]*ingressRoute{} // namespace, host, match: the route a canary joins
	for _, ing := range mains {
		ns := nsOf(ing.Namespace)
		for _, r := range c.ingressRoutes(ing, len(ns.certs) > 0, connect) {
			ns.routes = append(ns.routes, r.route)
			if r.redirect {
				ns.routes = append(ns.routes, redirectTwin(r.route))
			}
			k := matchKey(ing.Namespace, r.route)
			if byMatch[k] == nil {
				byMatch[k] = r
			}
		}
	}
	for _, ing := range canaries {
		ns := nsOf(ing.Namespace)
		ns.routes = append(ns.routes, c.canaryRoutes(ing, byMatch, connect)...)
	}
	for u, d := range connect {
		if u.Spec.Timeouts == nil {
			u.Spec.Timeouts = &v1alpha1.UpstreamTimeouts{}
		}
		u.Spec.Timeouts.Connect = d.String()
	}
	names := make([]string, 0, len(namespaces))
	for n := range namespaces {
		names = append(names, n)
	}
	sort.Strings(names)
	res := c.out.Resources
	for _, n := range names {
		ns := namespaces[n]
		res.Gateways = append(res.Gateways, ingressGateway(n, IngressGateway, v1alpha1.Listener{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP}))
		if len(ns.certs) > 0 {
			res.Gateways = append(res.Gateways, ingressGateway(n, IngressGatewayHTTPS, v1alpha1.Listener{Name: "https", Port: 443,
				Protocol: v1alpha1.ProtocolHTTPS, TLS: &v1alpha1.ListenerTLS{CertificateRefs: ns.certs}}))
		}
		res.Routes = append(res.Routes, ns.routes...)
	}
}

// servedIngresses returns the Ingresses Portico serves, sorted by namespace and name:
// spec.ingressClassName, or else the legacy kubernetes.io/ingress.class annotation,
// names an IngressClass whose controller is Portico's; an Ingress naming no class takes
// Portico's default class (annotation ingressclass.kubernetes.io/is-default-class:
// "true"; with several, the first by name).
func (c *converter) servedIngresses() []*networkingv1.Ingress {
	ours := map[string]bool{}
	def := ""
	classes := append([]*networkingv1.IngressClass(nil), c.objs.IngressClasses...)
	sort.Slice(classes, func(i, j int) bool { return classes[i].Name < classes[j].Name })
	for _, ic := range classes {
		if ic.Spec.Controller != c.opts.IngressController {
			continue
		}
		ours[ic.Name] = true
		if def == "" && ic.Annotations[annDefaultClass] == "true" {
			def = ic.Name
		}
	}
	var out []*networkingv1.Ingress
	for _, ing := range c.objs.Ingresses {
		class := ing.Annotations[annLegacyClass]
		if ing.Spec.IngressClassName != nil {
			class = *ing.Spec.IngressClassName
		}
		if class == "" {
			class = def
		}
		if class != "" && ours[class] {
			out = append(out, ing)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// ingressStatus is the status of every Ingress Portico serves: the data plane's addresses.
func (c *converter) ingressStatus() networkingv1.IngressStatus {
	var st networkingv1.IngressStatus
	for _, a := range c.opts.Addresses {
		if net.ParseIP(a) != nil {
			st.LoadBalancer.Ingress = append(st.LoadBalancer.Ingress, networkingv1.IngressLoadBalancerIngress{IP: a})
		} else {
			st.LoadBalancer.Ingress = append(st.LoadBalancer.Ingress, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		}
	}
	return st
}

// ingressRoutes makes an Ingress's Routes: one per rule path ("<ingress>-r<rule>-p<path>")
// and one for the default backend ("<ingress>-default").
func (c *converter) ingressRoutes(ing *networkingv1.Ingress, https bool, connect map[*v1alpha1.Upstream]time.Duration) []*ingressRoute {
	a := c.ingressAnnotations(ing)
	tlsHosts := map[string]bool{}
	for _, t := range ing.Spec.TLS {
		for _, h := range t.Hosts {
			tlsHosts[strings.ToLower(h)] = true
		}
	}
	var out []*ingressRoute
	add := func(name, host string, match *v1alpha1.RouteMatch, b networkingv1.IngressBackend, field string) {
		up, ok := c.ingressBackend(ing, b, a, field, connect)
		if !ok {
			return
		}
		r := newIngressRoute(ing, name, host, match)
		r.Spec.Backends = []v1alpha1.Backend{{Upstream: up}}
		a.apply(r, match)
		redirect := https && (a.forceSSLRedirect || (a.sslRedirect && host != "" && coveredBy(host, tlsHosts)))
		switch {
		case redirect:
			r.Spec.Gateways = []string{IngressGatewayHTTPS}
		case a.forceSSLRedirect: // no certificate in this namespace: nothing serves https
			c.warn(ing, "%s: force-ssl-redirect without a usable TLS certificate in the namespace: ignored", field)
			r.Spec.Gateways = []string{IngressGateway}
		case https:
			r.Spec.Gateways = []string{IngressGateway, IngressGatewayHTTPS}
		default:
			r.Spec.Gateways = []string{IngressGateway}
		}
		out = append(out, &ingressRoute{route: r, redirect: redirect})
	}
	for i, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			field := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			m, ok := pathMatch(p)
			if !ok {
				c.warn(ing, "%s: unknown pathType %q: skipped", field, *p.PathType)
				continue
			}
			add(fmt.Sprintf("%s-r%d-p%d", ing.Name, i, j), rule.Host, m, p.Backend, field+".backend")
		}
	}
	if b := ing.Spec.DefaultBackend; b != nil {
		add(ing.Name+"-default", "", nil, *b, "spec.defaultBackend")
	}
	return out
}

// pathMatch maps an Ingress path: Exact → Exact, Prefix and ImplementationSpecific →
// PathPrefix (whole segments, as the Ingress Prefix type); an empty path is "/".
func pathMatch(p networkingv1.HTTPIngressPath) (*v1alpha1.RouteMatch, bool) {
	path := p.Path
	if path == "" {
		path = "/"
	}
	t := networkingv1.PathTypeImplementationSpecific
	if p.PathType != nil {
		t = *p.PathType
	}
	switch t {
	case networkingv1.PathTypeExact:
		return &v1alpha1.RouteMatch{Path: &v1alpha1.PathMatch{Type: v1alpha1.PathExact, Value: path}}, true
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		return &v1alpha1.RouteMatch{Path: &v1alpha1.PathMatch{Type: v1alpha1.PathPrefix, Value: path}}, true
	}
	return nil, false
}

// ingressBackend resolves an Ingress backend to an Upstream (see serviceUpstream). A
// resource backend is not supported: the path is skipped with a warning.
func (c *converter) ingressBackend(ing *networkingv1.Ingress, b networkingv1.IngressBackend, a *ingressAnnotations, field string, connect map[*v1alpha1.Upstream]time.Duration) (string, bool) {
	if b.Service == nil {
		c.warn(ing, "%s: only service backends are supported: skipped", field)
		return "", false
	}
	port := ServicePort{Number: b.Service.Port.Number, Name: b.Service.Port.Name}
	name, ok := c.serviceUpstream(ing.Namespace, b.Service.Name, port, a.protocol)
	if !ok {
		c.warn(ing, "%s: Service %q port %s not found: its Upstream has no endpoints", field, b.Service.Name, port)
	}
	if a.connectTimeout > 0 {
		u := c.upstream(ing.Namespace, name)
		if d, set := connect[u]; !set || a.connectTimeout < d {
			connect[u] = a.connectTimeout
		}
	}
	return name, true
}

// newIngressRoute starts a Route for an Ingress: its namespace, the Ingress's creation
// time (the older Ingress wins a precedence tie, as with ingress-nginx), the host and match.
func newIngressRoute(ing *networkingv1.Ingress, name, host string, m *v1alpha1.RouteMatch) *v1alpha1.Route {
	r := &v1alpha1.Route{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindRoute},
		Metadata: v1alpha1.ObjectMeta{Name: name, Namespace: ing.Namespace},
	}
	if !ing.CreationTimestamp.IsZero() {
		r.Metadata.CreationTimestamp = ing.CreationTimestamp.UTC().Format(time.RFC3339)
	}
	if host != "" {
		r.Spec.Hosts = []string{strings.ToLower(host)}
	}
	if m != nil {
		r.Spec.Matches = []v1alpha1.RouteMatch{*m}
	}
	return r
}

// redirectTwin is the route on :80 that redirects what r serves on :443 to https (308).
func redirectTwin(r *v1alpha1.Route) *v1alpha1.Route {
	return &v1alpha1.Route{
		TypeMeta: r.TypeMeta,
		Metadata: v1alpha1.ObjectMeta{Name: r.Metadata.Name + "-redirect", Namespace: r.Metadata.Namespace, CreationTimestamp: r.Metadata.CreationTimestamp},
		Spec: v1alpha1.RouteSpec{
			Gateways: []string{IngressGateway},
			Hosts:    r.Spec.Hosts,
			Matches:  r.Spec.Matches,
			Filters: []v1alpha1.RouteFilter{{Type: v1alpha1.FilterRequestRedirect,
				RequestRedirect: &v1alpha1.RequestRedirect{Scheme: "https", StatusCode: 308}}},
		},
	}
}

// canaryRoutes merges a canary Ingress (canary: "true") into the routes of the main
// Ingress with the same namespace, host and path: canary-weight splits the main route's
// traffic (out of canary-weight-total, default 100); canary-by-header (with
// canary-by-header-value, default "always") adds a route "<main route>-canary" that
// sends requests carrying that header value to the canary. A path with no main route
// is skipped with a warning.
func (c *converter) canaryRoutes(ing *networkingv1.Ingress, byMatch map[string]*ingressRoute, connect map[*v1alpha1.Upstream]time.Duration) []*v1alpha1.Route {
	a := c.ingressAnnotations(ing)
	var out []*v1alpha1.Route
	join := func(host string, m *v1alpha1.RouteMatch, b networkingv1.IngressBackend, field string) {
		probe := newIngressRoute(ing, "probe", host, m)
		main := byMatch[matchKey(ing.Namespace, probe)]
		if main == nil {
			c.warn(ing, "%s: canary without a main Ingress for the same host and path: skipped", field)
			return
		}
		up, ok := c.ingressBackend(ing, b, a, field, connect)
		if !ok {
			return
		}
		mr := main.route
		if a.canaryWeight != nil {
			w, total := *a.canaryWeight, a.canaryTotal
			if w > total {
				w = total
			}
			mainW := total - w
			mr.Spec.Backends[0].Weight = &mainW
			mr.Spec.Backends = append(mr.Spec.Backends, v1alpha1.Backend{Upstream: up, Weight: &w})
		}
		if a.canaryHeader != "" {
			cr := newIngressRoute(ing, mr.Metadata.Name+"-canary", host, m)
			cr.Metadata.CreationTimestamp = mr.Metadata.CreationTimestamp
			cr.Spec.Gateways = mr.Spec.Gateways
			if len(cr.Spec.Matches) == 0 {
				cr.Spec.Matches = []v1alpha1.RouteMatch{{}}
			}
			cr.Spec.Matches[0].Headers = []v1alpha1.ValueMatch{{Type: v1alpha1.MatchExact, Name: a.canaryHeader, Value: a.canaryHeaderValue}}
			cr.Spec.Backends = []v1alpha1.Backend{{Upstream: up}}
			cr.Spec.Filters, cr.Spec.Timeouts, cr.Spec.Plugins = mr.Spec.Filters, mr.Spec.Timeouts, mr.Spec.Plugins
			out = append(out, cr)
			if main.redirect {
				out = append(out, redirectTwin(cr))
			}
		}
		if a.canaryWeight == nil && a.canaryHeader == "" {
			c.warn(ing, "canary without canary-weight or canary-by-header: nothing to do")
		}
	}
	for i, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			field := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			if m, ok := pathMatch(p); ok {
				join(rule.Host, m, p.Backend, field+".backend")
			}
		}
	}
	if b := ing.Spec.DefaultBackend; b != nil {
		join("", nil, *b, "spec.defaultBackend")
	}
	return out
}

// matchKey identifies what a route takes: namespace, host and path match.
func matchKey(ns string, r *v1alpha1.Route) string {
	k := ns + "|" + strings.Join(r.Spec.Hosts, ",")
	if len(r.Spec.Matches) > 0 && r.Spec.Matches[0].Path != nil {
		k += "|" + r.Spec.Matches[0].Path.Type + "|" + r.Spec.Matches[0].Path.Value
	}
	return k
}

// coveredBy reports whether host is one of the TLS hosts, or covered by a wildcard among them.
func coveredBy(host string, tlsHosts map[string]bool) bool {
	host = strings.ToLower(host)
	if tlsHosts[host] {
		return true
	}
	if i := strings.IndexByte(host, '.'); i > 0 && !strings.HasPrefix(host, "*.") {
		return tlsHosts["*"+host[i:]]
	}
	return false
}

func ingressGateway(ns, name string, l v1alpha1.Listener) *v1alpha1.Gateway {
	return &v1alpha1.Gateway{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindGateway},
		Metadata: v1alpha1.ObjectMeta{Name: name, Namespace: ns},
		Spec:     v1alpha1.GatewaySpec{Listeners: []v1alpha1.Listener{l}},
	}
}

// warn records a note about an Ingress in Result.Warnings.
func (c *converter) warn(ing *networkingv1.Ingress, format string, args ...any) {
	k := keyOf(ing)
	c.out.Warnings[k] = append(c.out.Warnings[k], fmt.Sprintf(format, args...))
}

func keyOf(ing *networkingv1.Ingress) types.NamespacedName {
	return types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseSeconds reads an nginx-style timeout: seconds ("60") or a Go duration ("1m").
func parseSeconds(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, n > 0
	}
	d, err := time.ParseDuration(v)
	return d, err == nil && d > 0
}

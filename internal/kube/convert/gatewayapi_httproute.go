package convert

import (
	"fmt"
	"regexp"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"portico.dev/portico/api/v1alpha1"
)

// ruleTemplate is one route rule translated, before it is placed on a Gateway: the
// backends become Upstreams in the Gateway's namespace then.
type ruleTemplate struct {
	spec     v1alpha1.RouteSpec
	backends []svcBackend
	named    int // backendRefs written in the rule
	mirror   *svcBackend
	mirrorPc *float64
}

// httpRoutes converts every HTTPRoute attached to Portico's Gateways.
func (g *gwConv) httpRoutes() {
	for _, r := range gwSorted(g.objs.HTTPRoutes) {
		g.l7Route(newRouteInfo(kindHTTPRoute, &r.ObjectMeta, r.Spec.Hostnames, true), r.Spec.ParentRefs, len(r.Spec.Rules), false,
			func(rs *routeResult, field string, i int) *ruleTemplate {
				return g.httpRule(rs, field, &r.Spec.Rules[i])
			})
	}
}

// l7Route attaches one HTTPRoute or GRPCRoute to its parents, turns each of its n rules
// into a template with rule, emits the Portico Routes and writes the route's status.
func (g *gwConv) l7Route(info routeInfo, parents []gwv1.ParentReference, n int, grpc bool, rule func(rs *routeResult, field string, i int) *ruleTemplate) {
	rs := g.attach(info, parents)
	if len(rs.parents) == 0 {
		return
	}
	rules := make([]*ruleTemplate, 0, n)
	for i := range n {
		rules = append(rules, rule(rs, fmt.Sprintf("spec.rules[%d]", i), i))
	}
	g.emitRoutes(rs, rules, grpc)
	g.writeStatus(rs)
}

// emitRoutes makes one Portico Route per rule and Gateway, in the Gateway's namespace,
// serving the hostnames the route shares with the listeners it attaches to.
func (g *gwConv) emitRoutes(rs *routeResult, rules []*ruleTemplate, grpc bool) {
	rs.markAttached()
	if !rs.accepted() {
		return
	}
	for _, a := range rs.attachments {
		ns := a.gw.obj.Namespace
		for i, rule := range rules {
			spec := rule.spec
			spec.Gateways = []string{a.gw.obj.Name}
			spec.Hosts = a.allHosts()
			if rule.named > 0 || len(rule.backends) > 0 {
				backends, abort := g.backendList(ns, rule.backends, rule.named, grpc, true)
				spec.Backends = backends
				if abort {
					spec.Fault = abortFault()
				}
			}
			if rule.mirror != nil {
				spec.Mirror = &v1alpha1.Mirror{Upstream: g.upstreamFor(ns, *rule.mirror, grpc, true), Percent: rule.mirrorPc}
			}
			g.out.Resources.Routes = append(g.out.Resources.Routes, &v1alpha1.Route{
				TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindRoute},
				Metadata: v1alpha1.ObjectMeta{Namespace: ns, Name: objectName(rs.info.key, a.gw.obj.Name, fmt.Sprintf("r%02d", i)),
					CreationTimestamp: rs.info.created},
				Spec: spec,
			})
		}
	}
}

// httpRule translates one HTTPRoute rule.
func (g *gwConv) httpRule(rs *routeResult, field string, rule *gwv1.HTTPRouteRule) *ruleTemplate {
	t := &ruleTemplate{}
	for _, m := range rule.Matches {
		t.spec.Matches = append(t.spec.Matches, httpMatch(m))
	}
	g.httpFilters(rs, field+".filters", rule.Filters, t)
	for i, br := range rule.BackendRefs {
		f := fmt.Sprintf("%s.backendRefs[%d]", field, i)
		if len(br.Filters) > 0 {
			rs.unsupportedValue("%s.filters: filters on a backendRef are not supported", f)
		}
		t.named++
		if b, ok := g.resolveBackend(rs, f, br.BackendObjectReference, br.Weight); ok {
			t.backends = append(t.backends, b)
		}
	}
	if to := rule.Timeouts; to != nil && to.Request != nil {
		t.spec.Timeouts = &v1alpha1.RouteTimeouts{Request: string(*to.Request)}
	}
	return t
}

// httpMatch translates an HTTPRouteMatch. Repeated header (case-insensitive) or query
// names keep the first, as the Gateway API says.
func httpMatch(m gwv1.HTTPRouteMatch) v1alpha1.RouteMatch {
	var out v1alpha1.RouteMatch
	if m.Path != nil {
		out.Path = &v1alpha1.PathMatch{Type: string(gwDeref(m.Path.Type, gwv1.PathMatchPathPrefix)), Value: gwDeref(m.Path.Value, "/")}
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		if k := strings.ToLower(string(h.Name)); !seen[k] {
			seen[k] = true
			out.Headers = append(out.Headers, v1alpha1.ValueMatch{Type: string(gwDeref(h.Type, gwv1.HeaderMatchExact)), Name: string(h.Name), Value: h.Value})
		}
	}
	seen = map[string]bool{}
	for _, q := range m.QueryParams {
		if !seen[string(q.Name)] {
			seen[string(q.Name)] = true
			out.QueryParams = append(out.QueryParams, v1alpha1.ValueMatch{Type: string(gwDeref(q.Type, gwv1.QueryParamMatchExact)), Name: string(q.Name), Value: q.Value})
		}
	}
	return out
}

// httpFilters translates a rule's filters; unsupported ones make the route
// Accepted=False (UnsupportedValue).
func (g *gwConv) httpFilters(rs *routeResult, field string, filters []gwv1.HTTPRouteFilter, t *ruleTemplate) {
	for i, f := range filters {
		p := fmt.Sprintf("%s[%d]", field, i)
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			t.spec.Filters = append(t.spec.Filters, v1alpha1.RouteFilter{Type: v1alpha1.FilterRequestHeaderModifier,
				RequestHeaderModifier: headerModifier(f.RequestHeaderModifier)})
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			t.spec.Filters = append(t.spec.Filters, v1alpha1.RouteFilter{Type: v1alpha1.FilterResponseHeaderModifier,
				ResponseHeaderModifier: headerModifier(f.ResponseHeaderModifier)})
		case gwv1.HTTPRouteFilterRequestRedirect:
			rd := f.RequestRedirect
			if rd == nil {
				rs.unsupportedValue("%s.requestRedirect: required", p)
				continue
			}
			out := &v1alpha1.RequestRedirect{Scheme: gwDeref(rd.Scheme, ""), Hostname: string(gwDeref(rd.Hostname, "")),
				Port: int32(gwDeref(rd.Port, 0)), Path: pathModifier(rd.Path), StatusCode: gwDeref(rd.StatusCode, 0)}
			t.spec.Filters = append(t.spec.Filters, v1alpha1.RouteFilter{Type: v1alpha1.FilterRequestRedirect, RequestRedirect: out})
		case gwv1.HTTPRouteFilterURLRewrite:
			rw := f.URLRewrite
			if rw == nil {
				rs.unsupportedValue("%s.urlRewrite: required", p)
				continue
			}
			t.spec.Filters = append(t.spec.Filters, v1alpha1.RouteFilter{Type: v1alpha1.FilterURLRewrite,
				URLRewrite: &v1alpha1.URLRewrite{Hostname: string(gwDeref(rw.Hostname, "")), Path: pathModifier(rw.Path)}})
		case gwv1.HTTPRouteFilterRequestMirror:
			g.mirrorFilter(rs, p, f.RequestMirror, t)
		default:
			rs.unsupportedValue("%s.type: filter %s is not supported", p, f.Type)
		}
	}
}

// mirrorFilter resolves a RequestMirror filter; Portico mirrors to one backend.
func (g *gwConv) mirrorFilter(rs *routeResult, p string, m *gwv1.HTTPRequestMirrorFilter, t *ruleTemplate) {
	switch {
	case m == nil:
		rs.unsupportedValue("%s.requestMirror: required", p)
		return
	case t.mirror != nil:
		rs.unsupportedValue("%s: only one RequestMirror filter per rule is supported", p)
		return
	}
	b, ok := g.resolveBackend(rs, p+".requestMirror.backendRef", m.BackendRef, nil)
	if !ok || !b.found {
		return
	}
	t.mirror = &b
	switch {
	case m.Percent != nil:
		t.mirrorPc = gwPtr(float64(*m.Percent))
	case m.Fraction != nil:
		den := gwDeref(m.Fraction.Denominator, 100)
		if den > 0 {
			t.mirrorPc = gwPtr(float64(m.Fraction.Numerator) * 100 / float64(den))
		}
	}
}

func headerModifier(h *gwv1.HTTPHeaderFilter) *v1alpha1.HeaderModifier {
	out := &v1alpha1.HeaderModifier{}
	if h == nil {
		return out
	}
	for _, s := range h.Set {
		out.Set = append(out.Set, v1alpha1.Header{Name: string(s.Name), Value: s.Value})
	}
	for _, a := range h.Add {
		out.Add = append(out.Add, v1alpha1.Header{Name: string(a.Name), Value: a.Value})
	}
	out.Remove = append(out.Remove, h.Remove...)
	return out
}

func pathModifier(p *gwv1.HTTPPathModifier) *v1alpha1.PathModifier {
	if p == nil {
		return nil
	}
	out := &v1alpha1.PathModifier{Type: string(p.Type)}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		out.ReplaceFullPath = gwDeref(p.ReplaceFullPath, "/")
	case gwv1.PrefixMatchHTTPPathModifier:
		out.ReplacePrefixMatch = gwDeref(p.ReplacePrefixMatch, "")
	}
	return out
}

// grpcRoutes converts every GRPCRoute: gRPC methods are request paths
// "/package.Service/Method", and backends speak HTTP/2 without TLS (h2c).
func (g *gwConv) grpcRoutes() {
	for _, r := range gwSorted(g.objs.GRPCRoutes) {
		g.l7Route(newRouteInfo(kindGRPCRoute, &r.ObjectMeta, r.Spec.Hostnames, true), r.Spec.ParentRefs, len(r.Spec.Rules), true,
			func(rs *routeResult, field string, i int) *ruleTemplate {
				return g.grpcRule(rs, field, &r.Spec.Rules[i])
			})
	}
}

func (g *gwConv) grpcRule(rs *routeResult, field string, rule *gwv1.GRPCRouteRule) *ruleTemplate {
	t := &ruleTemplate{}
	for _, m := range rule.Matches {
		var out v1alpha1.RouteMatch
		if m.Method != nil {
			out.Path = grpcPath(m.Method)
		}
		seen := map[string]bool{}
		for _, h := range m.Headers {
			if k := strings.ToLower(string(h.Name)); !seen[k] {
				seen[k] = true
				out.Headers = append(out.Headers, v1alpha1.ValueMatch{Type: string(gwDeref(h.Type, gwv1.GRPCHeaderMatchExact)), Name: string(h.Name), Value: h.Value})
			}
		}
		t.spec.Matches = append(t.spec.Matches, out)
	}
	var filters []gwv1.HTTPRouteFilter
	for _, f := range rule.Filters {
		filters = append(filters, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterType(f.Type), RequestHeaderModifier: f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier, RequestMirror: f.RequestMirror, ExtensionRef: f.ExtensionRef})
	}
	g.httpFilters(rs, field+".filters", filters, t)
	for i, br := range rule.BackendRefs {
		f := fmt.Sprintf("%s.backendRefs[%d]", field, i)
		if len(br.Filters) > 0 {
			rs.unsupportedValue("%s.filters: filters on a backendRef are not supported", f)
		}
		t.named++
		if b, ok := g.resolveBackend(rs, f, br.BackendObjectReference, br.Weight); ok {
			t.backends = append(t.backends, b)
		}
	}
	return t
}

// grpcPath maps a gRPC method match to a path match: service and method exactly
// ("/svc/Method"), a whole service (PathPrefix "/svc/"), or a regular expression.
func grpcPath(m *gwv1.GRPCMethodMatch) *v1alpha1.PathMatch {
	svc, method := gwDeref(m.Service, ""), gwDeref(m.Method, "")
	if gwDeref(m.Type, gwv1.GRPCMethodMatchExact) == gwv1.GRPCMethodMatchRegularExpression {
		if svc == "" {
			svc = "[^/]+"
		}
		if method == "" {
			method = "[^/]+"
		}
		return &v1alpha1.PathMatch{Type: v1alpha1.PathRegex, Value: "/(" + svc + ")/(" + method + ")"}
	}
	switch {
	case svc != "" && method != "":
		return &v1alpha1.PathMatch{Type: v1alpha1.PathExact, Value: "/" + svc + "/" + method}
	case svc != "":
		return &v1alpha1.PathMatch{Type: v1alpha1.PathPrefix, Value: "/" + svc + "/"}
	case method != "":
		return &v1alpha1.PathMatch{Type: v1alpha1.PathRegex, Value: "/[^/]+/" + regexp.QuoteMeta(method)}
	}
	return nil
}

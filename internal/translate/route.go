package translate

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

// routeEntry is one IR route waiting to be sorted into its virtual host, with what
// precedence needs to know about its object.
type routeEntry struct {
	route      ir.Route
	created    time.Time
	hasCreated bool
}

// routes attaches every accepted Route to the HTTP and HTTPS listeners of its gateways.
func (t *translator) routes(routes []*v1alpha1.Route) {
	seen := make(map[resource.Key]int, len(routes))
	for _, i := range sortedByName(len(routes), func(i int) *v1alpha1.ObjectMeta { return &routes[i].Metadata }) {
		r := routes[i]
		key := keyOf(v1alpha1.KindRoute, &r.Metadata)
		entries, perrs := pluginRefs("spec.plugins", r.Spec.Plugins)
		if !t.admit(key, seen, append(t.res.Validate(r), perrs...)) {
			continue
		}
		own := refOf(&r.Metadata)
		t.plugins.routes[own] = true
		if len(entries) > 0 {
			t.plugins.inline[target{v1alpha1.KindRoute, own}] = entries
		}
		st := t.status.get(key)
		st.hasRefs = true
		base := t.routeEntries(key, r)
		plugins, prob := t.routePlugins(r)
		if prob != nil {
			t.status.reject(key, prob.reason, prob.message)
			st.notProgrammed = "its plugins cannot be configured: not part of the configuration"
			continue
		}
		attached, matched := t.attachRoute(key, r, base, plugins)
		st.programmed = attached
		if !attached {
			st.notProgrammed = "not attached to any listener"
			if matched {
				st.notProgrammed = "every listener it attaches to is not programmed (see the Gateway status)"
			}
		}
	}
}

// attachRoute adds a route's entries under each hostname it shares with each listener,
// with the plugins merged for that listener's gateway.
// attached reports whether any entry was added; matched whether some listener
// (programmed or not) accepts the route's hosts.
func (t *translator) attachRoute(key resource.Key, r *v1alpha1.Route, base []routeEntry, plugins map[ref][]ir.PluginSpec) (attached, matched bool) {
	names, defaulted := gatewayRefs(r.Spec.Gateways)
	for gi, name := range names {
		gr := ref{r.Metadata.Namespace, name}
		if t.gateways[gr] == nil {
			t.status.reject(key, v1alpha1.ReasonNoGateway, gatewayField(gi, defaulted)+": "+t.gatewayMissing(gr, defaulted))
			continue
		}
		var httpListeners []string
		matchedHere := false
		for _, e := range t.gwListeners[gr] {
			if e.spec.Protocol != v1alpha1.ProtocolHTTP && e.spec.Protocol != v1alpha1.ProtocolHTTPS {
				continue
			}
			httpListeners = append(httpListeners, fmt.Sprintf("%q (hostname %q)", e.spec.Name, e.hostname))
			hosts := intersectHosts(e.hostname, r.Spec.Hosts)
			if len(hosts) == 0 {
				continue
			}
			matchedHere = true
			if e.build == nil {
				continue
			}
			for _, h := range hosts {
				for _, b := range base {
					entry := b
					entry.route.Gateway = e.name
					entry.route.Plugins = plugins[gr]
					e.build.vhosts[h] = append(e.build.vhosts[h], &entry)
				}
			}
			attached = true
		}
		switch {
		case len(httpListeners) == 0:
			t.status.reject(key, v1alpha1.ReasonNotAllowed, fmt.Sprintf("%s: Gateway %q has no HTTP or HTTPS listener",
				gatewayField(gi, defaulted), name))
		case !matchedHere:
			t.status.reject(key, v1alpha1.ReasonNoListener, fmt.Sprintf("spec.hosts: no listener of Gateway %q accepts these hosts (listeners: %s)",
				name, strings.Join(httpListeners, ", ")))
		}
		matched = matched || matchedHere
	}
	return attached, matched
}

// routeEntries translates a route's matches (one entry each; no matches means one
// PathPrefix "/" match), with the filters, backends and traffic policy every entry
// shares.
func (t *translator) routeEntries(key resource.Key, r *v1alpha1.Route) []routeEntry {
	shared := ir.Route{Name: refOf(&r.Metadata).irName()}
	applyFilters(&shared, r.Spec.Filters)
	shared.Backends = t.backends(key, r.Metadata.Namespace, r.Spec.Backends)
	if to := r.Spec.Timeouts; to != nil {
		shared.TimeoutMillis = millis(to.Request, 0)
		shared.IdleTimeoutMillis = millis(to.Idle, 0)
	}
	shared.Retry = retry(r.Spec.Retry)
	shared.Mirror = t.mirror(key, r.Metadata.Namespace, r.Spec.Mirror)
	shared.Fault = fault(r.Spec.Fault)
	ts, hasTS := created(&r.Metadata)
	matches := r.Spec.Matches
	if len(matches) == 0 {
		matches = []v1alpha1.RouteMatch{{}}
	}
	out := make([]routeEntry, len(matches))
	for i, m := range matches {
		e := shared
		e.MatchIndex = i
		e.Path = pathMatch(m.Path)
		e.Method = m.Method
		for _, h := range m.Headers {
			e.Headers = append(e.Headers, ir.ValueMatch{Type: matchType(h.Type), Name: textproto.CanonicalMIMEHeaderKey(h.Name), Value: h.Value})
		}
		for _, q := range m.QueryParams {
			e.QueryParams = append(e.QueryParams, ir.ValueMatch{Type: matchType(q.Type), Name: q.Name, Value: q.Value})
		}
		out[i] = routeEntry{route: e, created: ts, hasCreated: hasTS}
	}
	return out
}

// pathMatch fills in the defaults: no path is PathPrefix "/", and a prefix loses its
// trailing "/" ("/api/" matches as "/api" does).
func pathMatch(p *v1alpha1.PathMatch) ir.PathMatch {
	if p == nil {
		return ir.PathMatch{Type: ir.MatchPrefix, Value: "/"}
	}
	m := ir.PathMatch{Type: p.Type, Value: p.Value}
	if m.Type == "" {
		m.Type = ir.MatchPrefix
	}
	if m.Type == ir.MatchPrefix {
		if trimmed := strings.TrimRight(m.Value, "/"); trimmed != "" {
			m.Value = trimmed
		} else {
			m.Value = "/"
		}
	}
	return m
}

func matchType(t string) string {
	if t == "" {
		return ir.MatchExact
	}
	return t
}

// applyFilters sets the IR fields each filter maps to. Validation guarantees each
// filter type appears once and its payload is present.
func applyFilters(r *ir.Route, filters []v1alpha1.RouteFilter) {
	for _, f := range filters {
		switch f.Type {
		case v1alpha1.FilterRequestHeaderModifier:
			r.RequestHeaders = headerModifier(f.RequestHeaderModifier)
		case v1alpha1.FilterResponseHeaderModifier:
			r.ResponseHeaders = headerModifier(f.ResponseHeaderModifier)
		case v1alpha1.FilterURLRewrite:
			rw := &ir.Rewrite{Hostname: strings.ToLower(f.URLRewrite.Hostname)}
			rw.FullPath, rw.PrefixPath = pathModifier(f.URLRewrite.Path)
			r.Rewrite = rw
		case v1alpha1.FilterRequestRedirect:
			rd := f.RequestRedirect
			out := &ir.Redirect{Scheme: rd.Scheme, Hostname: strings.ToLower(rd.Hostname), Port: rd.Port, StatusCode: rd.StatusCode}
			if out.StatusCode == 0 {
				out.StatusCode = 302
			}
			out.FullPath, out.PrefixPath = pathModifier(rd.Path)
			r.Redirect = out
		}
	}
}

func pathModifier(p *v1alpha1.PathModifier) (full string, prefix *string) {
	if p == nil {
		return "", nil
	}
	if p.Type == v1alpha1.ReplacePrefixMatch {
		v := p.ReplacePrefixMatch
		return "", &v
	}
	return p.ReplaceFullPath, nil
}

func headerModifier(h *v1alpha1.HeaderModifier) *ir.HeaderModifier {
	out := &ir.HeaderModifier{}
	for _, s := range h.Set {
		out.Set = append(out.Set, ir.Header{Name: textproto.CanonicalMIMEHeaderKey(s.Name), Value: s.Value})
	}
	for _, a := range h.Add {
		out.Add = append(out.Add, ir.Header{Name: textproto.CanonicalMIMEHeaderKey(a.Name), Value: a.Value})
	}
	for _, name := range h.Remove {
		out.Remove = append(out.Remove, textproto.CanonicalMIMEHeaderKey(name))
	}
	return out
}

// mirror resolves the mirror's upstream; when it does not resolve, the route reports
// BackendNotFound and runs without mirroring. An unset percent means 100.
func (t *translator) mirror(key resource.Key, ns string, m *v1alpha1.Mirror) *ir.Mirror {
	if m == nil {
		return nil
	}
	r := ref{ns, m.Upstream}
	if !t.upstreams[r] {
		t.status.unresolved(key, v1alpha1.ReasonBackendNotFound, "spec.mirror.upstream: "+t.missing(v1alpha1.KindUpstream, r))
		return nil
	}
	pct := float64(DefaultMirrorPercent)
	if m.Percent != nil {
		pct = *m.Percent
	}
	return &ir.Mirror{Upstream: r.irName(), Percent: pct}
}

package convert

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// routeInfo is what attachment needs to know about a route of any kind.
type routeInfo struct {
	key RouteKey
	gen int64
	// created is the route's creationTimestamp as Portico writes it.
	created string
	// hostnames (lower-case) of HTTPRoute, GRPCRoute and TLSRoute; usesHosts says the
	// kind has them.
	hostnames []string
	usesHosts bool
}

// lMatch is a listener a route attaches to, with the hostnames it serves there
// (nil: any host).
type lMatch struct {
	l     *lState
	hosts []string
}

// attachment is every listener of one Gateway a route attaches to.
type attachment struct {
	gw      *gwState
	matches []*lMatch
}

// parentResult is the outcome of one parentRef.
type parentResult struct {
	ref gwv1.ParentReference
	p   *gwProblem // nil: accepted
}

// routeResult collects a route's attachments and conditions.
type routeResult struct {
	info        routeInfo
	parents     []parentResult
	attachments []*attachment // sorted by Gateway
	// unsupported makes every parent Accepted=False (UnsupportedValue): nothing is made.
	unsupported []string
	resolved    []gwProblem
}

func (rs *routeResult) unresolved(reason, format string, args ...any) {
	rs.resolved = append(rs.resolved, gwProblem{reason, fmt.Sprintf(format, args...)})
}

func (rs *routeResult) unsupportedValue(format string, args ...any) {
	rs.unsupported = append(rs.unsupported, fmt.Sprintf(format, args...))
}

// accepted reports whether the route is attached somewhere and fully supported.
func (rs *routeResult) accepted() bool { return len(rs.unsupported) == 0 && len(rs.attachments) > 0 }

// attach evaluates every parentRef; refs to Gateways that are not Portico's (or do not
// exist: Portico cannot tell whose they would be) get no parent status.
func (g *gwConv) attach(info routeInfo, refs []gwv1.ParentReference) *routeResult {
	rs := &routeResult{info: info}
	byGW := map[*gwState]*attachment{}
	for _, pr := range refs {
		if refGroup(pr.Group, gatewayGroup) != gatewayGroup || refKind(pr.Kind, "Gateway") != "Gateway" {
			continue
		}
		ns := string(gwDeref(pr.Namespace, gwv1.Namespace(info.key.Namespace)))
		st := g.gateways[types.NamespacedName{Namespace: ns, Name: string(pr.Name)}]
		if st == nil || slices.ContainsFunc(rs.parents, func(p parentResult) bool { return reflect.DeepEqual(p.ref, pr) }) {
			continue
		}
		matches, p := g.parentListeners(info, st, pr)
		rs.parents = append(rs.parents, parentResult{ref: pr, p: p})
		if p != nil {
			continue
		}
		a := byGW[st]
		if a == nil {
			a = &attachment{gw: st}
			byGW[st] = a
			rs.attachments = append(rs.attachments, a)
		}
	next:
		for _, m := range matches {
			for _, old := range a.matches {
				if old.l == m.l {
					old.hosts = unionHosts(old.hosts, m.hosts)
					continue next
				}
			}
			a.matches = append(a.matches, m)
		}
	}
	sort.Slice(rs.attachments, func(i, j int) bool {
		a, b := rs.attachments[i].gw.obj, rs.attachments[j].gw.obj
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return rs
}

// parentListeners finds the listeners of st one parentRef attaches to.
func (g *gwConv) parentListeners(info routeInfo, st *gwState, pr gwv1.ParentReference) ([]*lMatch, *gwProblem) {
	var cands []*lState
	for _, l := range st.listeners {
		if pr.SectionName != nil && l.spec.Name != *pr.SectionName {
			continue
		}
		if pr.Port != nil && l.spec.Port != *pr.Port {
			continue
		}
		cands = append(cands, l)
	}
	if len(cands) == 0 {
		what := "listener"
		switch {
		case pr.SectionName != nil && pr.Port != nil:
			what = fmt.Sprintf("listener named %q on port %d", *pr.SectionName, *pr.Port)
		case pr.SectionName != nil:
			what = fmt.Sprintf("listener named %q", *pr.SectionName)
		case pr.Port != nil:
			what = fmt.Sprintf("listener on port %d", *pr.Port)
		}
		return nil, &gwProblem{string(gwv1.RouteReasonNoMatchingParent), fmt.Sprintf("Gateway %s/%s has no %s", st.obj.Namespace, st.obj.Name, what)}
	}
	var why []string
	var usable []*lState
	for _, l := range cands {
		switch ok, msg := listenerAllows(l, st.obj.Namespace, info); {
		case !ok:
			why = append(why, fmt.Sprintf("listener %q %s", l.spec.Name, msg))
		case !l.valid:
			why = append(why, fmt.Sprintf("listener %q is not programmed (see the Gateway's status)", l.spec.Name))
		default:
			usable = append(usable, l)
		}
	}
	if len(usable) == 0 {
		return nil, &gwProblem{string(gwv1.RouteReasonNotAllowedByListeners), strings.Join(why, "; ")}
	}
	var out []*lMatch
	var names []string
	for _, l := range usable {
		lh := ""
		if l.spec.Hostname != nil && info.usesHosts {
			lh = strings.ToLower(string(*l.spec.Hostname))
		}
		names = append(names, fmt.Sprintf("%q (hostname %q)", l.spec.Name, lh))
		if !info.usesHosts {
			out = append(out, &lMatch{l: l})
			continue
		}
		hosts, ok := intersectHostnames(lh, info.hostnames)
		if ok {
			out = append(out, &lMatch{l: l, hosts: hosts})
		}
	}
	if len(out) == 0 {
		return nil, &gwProblem{string(gwv1.RouteReasonNoMatchingListenerHostname),
			fmt.Sprintf("no listener of Gateway %s/%s accepts hostnames %s (listeners: %s)", st.obj.Namespace, st.obj.Name,
				strings.Join(info.hostnames, ", "), strings.Join(names, ", "))}
	}
	return out, nil
}

// listenerAllows checks a listener's allowedRoutes (kinds and namespaces) for a route.
func listenerAllows(l *lState, gwNS string, info routeInfo) (bool, string) {
	kindOK := false
	for _, k := range l.kinds {
		if string(k.Kind) == info.key.Kind {
			kindOK = true
		}
	}
	if !kindOK {
		return false, fmt.Sprintf("does not allow %s (protocol %s)", info.key.Kind, l.spec.Protocol)
	}
	from := gwv1.NamespacesFromSame
	if l.spec.AllowedRoutes != nil && l.spec.AllowedRoutes.Namespaces != nil && l.spec.AllowedRoutes.Namespaces.From != nil {
		from = *l.spec.AllowedRoutes.Namespaces.From
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true, ""
	case gwv1.NamespacesFromSame:
		if info.key.Namespace == gwNS {
			return true, ""
		}
		return false, fmt.Sprintf("allows routes from namespace %q only", gwNS)
	case gwv1.NamespacesFromSelector:
		return false, "selects namespaces by label, which Portico does not support yet"
	}
	return false, fmt.Sprintf("allows routes from no namespace (from: %s)", from)
}

// intersectHostnames intersects a listener hostname ("" for any) with a route's
// hostnames (none for any), with Gateway API wildcard rules. hosts nil means any host.
func intersectHostnames(listener string, route []string) (hosts []string, ok bool) {
	if len(route) == 0 {
		if listener == "" {
			return nil, true
		}
		return []string{listener}, true
	}
	for _, h := range route {
		if listener != "" {
			var match bool
			if h, match = intersectHost(listener, h); !match {
				continue
			}
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts, len(hosts) > 0
}

// intersectHost intersects two host patterns (exact or "*.suffix"), as translation does.
func intersectHost(a, b string) (string, bool) {
	wa, wb := strings.HasPrefix(a, "*."), strings.HasPrefix(b, "*.")
	switch {
	case a == b:
		return a, true
	case wa && strings.HasSuffix(b, a[1:]):
		return b, true
	case wb && strings.HasSuffix(a, b[1:]):
		return a, true
	}
	return "", false
}

// unionHosts merges two host lists where nil means any host.
func unionHosts(a, b []string) []string {
	if a == nil || b == nil {
		return nil
	}
	out := slices.Clone(a)
	for _, h := range b {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// allHosts is the union of an attachment's hostnames (nil: any host).
func (a *attachment) allHosts() []string {
	var out []string
	for i, m := range a.matches {
		if i == 0 {
			out = slices.Clone(m.hosts)
			continue
		}
		out = unionHosts(out, m.hosts)
	}
	if out != nil {
		sort.Strings(out)
	}
	return out
}

// markAttached counts the route on every listener it attaches to.
func (rs *routeResult) markAttached() {
	if !rs.accepted() {
		return
	}
	for _, a := range rs.attachments {
		for _, m := range a.matches {
			m.l.attached[rs.info.key] = true
		}
	}
}

// writeStatus records the route's status: one parent status per parentRef of ours.
func (g *gwConv) writeStatus(rs *routeResult) {
	if len(rs.parents) == 0 {
		return
	}
	gen := rs.info.gen
	var resolved *gwProblem
	if len(rs.resolved) > 0 {
		msgs := make([]string, len(rs.resolved))
		for i, p := range rs.resolved {
			msgs[i] = p.message
		}
		resolved = &gwProblem{rs.resolved[0].reason, strings.Join(msgs, "; ")}
	}
	var st gwv1.RouteStatus
	for _, pr := range rs.parents {
		p := pr.p
		if p == nil && len(rs.unsupported) > 0 {
			p = &gwProblem{string(gwv1.RouteReasonUnsupportedValue), strings.Join(rs.unsupported, "; ")}
		}
		st.Parents = append(st.Parents, gwv1.RouteParentStatus{
			ParentRef:      pr.ref,
			ControllerName: gwv1.GatewayController(g.opts.ControllerName),
			Conditions: []metav1.Condition{
				gwCond(string(gwv1.RouteConditionAccepted), p, string(gwv1.RouteReasonAccepted), gen),
				gwCond(string(gwv1.RouteConditionResolvedRefs), resolved, string(gwv1.RouteReasonResolvedRefs), gen),
			},
		})
	}
	g.out.Routes[rs.info.key] = st
}

// newRouteInfo fills a routeInfo from an object's metadata.
func newRouteInfo(kind string, m *metav1.ObjectMeta, hostnames []gwv1.Hostname, usesHosts bool) routeInfo {
	info := routeInfo{key: RouteKey{Kind: kind, NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Name}},
		gen: m.Generation, created: gwTimestamp(m.CreationTimestamp), usesHosts: usesHosts}
	for _, h := range hostnames {
		info.hostnames = append(info.hostnames, strings.ToLower(string(h)))
	}
	return info
}

// objectName is the Portico name of what a route makes: kind, the route's namespace
// and name, then parts (the Gateway, a rule or listener), joined by ".".
func objectName(key RouteKey, parts ...string) string {
	return strings.Join(append([]string{strings.ToLower(key.Kind), key.Namespace, key.Name}, parts...), ".")
}

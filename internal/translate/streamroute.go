package translate

import (
	"fmt"
	"sort"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

// streamCandidate is a StreamRoute placed on one IR listener, before conflicts are
// settled.
type streamCandidate struct {
	key        resource.Key
	name       string // IR name
	created    time.Time
	hasCreated bool
	listener   *gwListener
	sni        []string // IR SNI; nil means any
	claims     []string // what it takes on the listener: SNI names, or "*"
	backends   []ir.Backend
	idle       string // spec.idleTimeout
}

// streamRoutes places every accepted StreamRoute on its gateways' L4 listeners. The
// older route keeps a contested listener (or SNI name); see the package documentation.
func (t *translator) streamRoutes(srs []*v1alpha1.StreamRoute) []ir.StreamRoute {
	seen := map[resource.Key]int{}
	var cands []*streamCandidate
	for _, i := range sortedByName(len(srs), func(i int) *v1alpha1.ObjectMeta { return &srs[i].Metadata }) {
		sr := srs[i]
		key := keyOf(v1alpha1.KindStreamRoute, &sr.Metadata)
		if !t.admit(key, seen, t.res.Validate(sr)) {
			continue
		}
		st := t.status.get(key)
		st.hasRefs = true
		st.notProgrammed = "not attached to any listener"
		backends := t.backends(key, sr.Metadata.Namespace, sr.Spec.Backends)
		ts, hasTS := created(&sr.Metadata)
		for _, e := range t.streamListeners(key, sr) {
			c := &streamCandidate{key: key, name: refOf(&sr.Metadata).irName(), created: ts, hasCreated: hasTS,
				listener: e, backends: backends, claims: []string{"*"}, idle: sr.Spec.IdleTimeout}
			if e.spec.Protocol == v1alpha1.ProtocolTLS {
				c.claims = intersectHosts(e.hostname, sr.Spec.SNI)
				if c.claims[0] != "*" {
					c.sni = c.claims
				}
			}
			if e.build == nil {
				st.notProgrammed = "every listener it attaches to is not programmed (see the Gateway status)"
				continue
			}
			cands = append(cands, c)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		return olderFirst(a.created, a.hasCreated, a.name, b.created, b.hasCreated, b.name) < 0
	})
	return t.placeStreams(cands)
}

// streamListeners returns the listeners a StreamRoute can use, reporting every
// reference that does not fit.
func (t *translator) streamListeners(key resource.Key, sr *v1alpha1.StreamRoute) []*gwListener {
	var out []*gwListener
	names, defaulted := gatewayRefs(sr.Spec.Gateways)
	for gi, name := range names {
		gr := ref{sr.Metadata.Namespace, name}
		if t.gateways[gr] == nil {
			t.status.reject(key, v1alpha1.ReasonNoGateway, gatewayField(gi, defaulted)+": "+t.gatewayMissing(gr, defaulted))
			continue
		}
		var e *gwListener
		for _, l := range t.gwListeners[gr] {
			if l.spec.Name == sr.Spec.Listener {
				e = l
			}
		}
		switch {
		case e == nil:
			t.status.reject(key, v1alpha1.ReasonNoGateway,
				fmt.Sprintf("spec.listener: Gateway %q has no listener %q", name, sr.Spec.Listener))
		case e.spec.Protocol != v1alpha1.ProtocolTCP && e.spec.Protocol != v1alpha1.ProtocolTLS && e.spec.Protocol != v1alpha1.ProtocolUDP:
			t.status.reject(key, v1alpha1.ReasonNotAllowed, fmt.Sprintf(
				"spec.listener: listener %q of Gateway %q has protocol %s, but a StreamRoute needs a TCP, TLS or UDP listener",
				e.spec.Name, name, e.spec.Protocol))
		case e.spec.Protocol != v1alpha1.ProtocolTLS && len(sr.Spec.SNI) > 0:
			t.status.reject(key, v1alpha1.ReasonNotAllowed, fmt.Sprintf(
				"spec.sni: only a TLS listener selects by SNI, and listener %q of Gateway %q has protocol %s",
				e.spec.Name, name, e.spec.Protocol))
		case e.spec.Protocol == v1alpha1.ProtocolTLS && len(intersectHosts(e.hostname, sr.Spec.SNI)) == 0:
			t.status.reject(key, v1alpha1.ReasonNoListener, fmt.Sprintf(
				"spec.sni: listener %q of Gateway %q (hostname %q) accepts none of these names", e.spec.Name, name, e.hostname))
		default:
			out = append(out, e)
		}
	}
	return out
}

// placeStreams gives each candidate, in precedence order, what it claims on its
// listener unless an earlier route holds it, and returns the IR stream routes in
// listener order.
func (t *translator) placeStreams(cands []*streamCandidate) []ir.StreamRoute {
	claimed := map[*listenerBuild]map[string]resource.Key{}
	placed := map[string]bool{} // "name listener": a route reached twice via merged listeners
	type placedRoute struct {
		index int
		sr    ir.StreamRoute
	}
	var out []placedRoute
	for _, c := range cands {
		b := c.listener.build
		if claimed[b] == nil {
			claimed[b] = map[string]resource.Key{}
		}
		conflict := ""
		for _, k := range c.claims {
			if owner, ok := claimed[b][k]; ok && owner != c.key {
				conflict = fmt.Sprintf("spec.listener: listener %q (%s) is already taken by %s", c.listener.spec.Name, b.name, owner)
				if k != "*" {
					conflict += fmt.Sprintf(" for SNI %q", k)
				}
				break
			}
		}
		if conflict != "" {
			t.status.reject(c.key, v1alpha1.ReasonRouteConflict, conflict)
			continue
		}
		for _, k := range c.claims {
			claimed[b][k] = c.key
		}
		t.status.get(c.key).programmed = true
		if id := c.name + " " + b.name; !placed[id] {
			placed[id] = true
			out = append(out, placedRoute{b.index, ir.StreamRoute{Name: c.name, Listener: b.name, SNI: c.sni, Backends: c.backends,
				IdleTimeoutMillis: streamIdle(c)}})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].index < out[j].index })
	var srs []ir.StreamRoute
	for _, p := range out {
		srs = append(srs, p.sr)
	}
	return srs
}

// streamIdle is a stream route's idle timeout on its listener: as set, or 60 s on UDP
// (sessions have no end of their own) and none on TCP and TLS.
func streamIdle(c *streamCandidate) int64 {
	def := int64(0)
	if c.listener.spec.Protocol == v1alpha1.ProtocolUDP {
		def = DefaultUDPIdleTimeoutMillis
	}
	return millis(c.idle, def)
}

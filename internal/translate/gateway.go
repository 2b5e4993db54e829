package translate

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

// gwListener is one listener of an accepted Gateway.
type gwListener struct {
	gateway  resource.Key
	index    int
	spec     *v1alpha1.Listener
	name     string // "gateway/listener", as ir.Listener.Gateways lists it
	hostname string // lower-case; empty for any host
	// certs are the IR names of its certificates, the default first.
	certs []string
	// build is the IR listener it feeds; nil when the listener was dropped.
	build *listenerBuild
}

func (e *gwListener) field() string {
	return "spec.listeners[" + strconv.Itoa(e.index) + "]"
}

func (e *gwListener) socket() string { return listenerName(e.spec.Address, e.spec.Port) }

// listenerBuild is an IR listener being filled with routes.
type listenerBuild struct {
	index    int // position in Snapshot.Listeners
	name     string
	protocol string
	// vhosts maps a hostname to the route entries attached under it.
	vhosts map[string][]*routeEntry
}

// listeners translates every accepted Gateway into IR listeners: one per address and
// port, without conflicts and with resolved certificates. Routes are added later.
func (t *translator) listeners(gws []*v1alpha1.Gateway) []ir.Listener {
	seen := map[resource.Key]int{}
	var all []*gwListener
	for _, i := range sortedByName(len(gws), func(i int) *v1alpha1.ObjectMeta { return &gws[i].Metadata }) {
		g := gws[i]
		key := keyOf(v1alpha1.KindGateway, &g.Metadata)
		entries, perrs := pluginRefs("spec.plugins", g.Spec.Plugins)
		if !t.admit(key, seen, append(t.res.Validate(g), perrs...)) {
			continue
		}
		r := refOf(&g.Metadata)
		t.plugins.inline[target{v1alpha1.KindGateway, r}] = entries
		t.gateways[r] = g
		t.status.get(key).hasRefs = true
		for j := range g.Spec.Listeners {
			l := &g.Spec.Listeners[j]
			e := &gwListener{gateway: key, index: j, spec: l, name: r.irName() + "/" + l.Name,
				hostname: strings.ToLower(l.Hostname)}
			all = append(all, e)
			t.gwListeners[r] = append(t.gwListeners[r], e)
		}
	}
	dropped := t.conflicts(all)
	for _, e := range all {
		if !t.resolveCerts(e) {
			dropped[e] = true
		}
	}
	out := t.buildListeners(all, dropped)
	for r, es := range t.gwListeners {
		key := resource.Key{Kind: v1alpha1.KindGateway, Namespace: r.namespace, Name: r.name}
		var off []string
		for _, e := range es {
			if e.build == nil {
				off = append(off, fmt.Sprintf("%s (%q)", e.field(), e.spec.Name))
			}
		}
		st := t.status.get(key)
		st.programmed = len(off) == 0
		st.notProgrammed = "listeners not programmed: " + strings.Join(off, ", ")
	}
	return out
}

// unspecified reports whether an address binds every address.
func unspecified(addr string) bool {
	return addr == "" || addr == "0.0.0.0" || addr == "::"
}

// conflicts finds listeners that cannot share their port and reports them on their
// gateways. Every listener involved is dropped.
func (t *translator) conflicts(all []*gwListener) map[*gwListener]bool {
	dropped := map[*gwListener]bool{}
	for _, a := range all {
		var why []string
		for _, b := range all {
			if a == b || a.spec.Port != b.spec.Port {
				continue
			}
			other := fmt.Sprintf("%s listener %q (%s %s)", b.gateway, b.spec.Name, b.socket(), b.spec.Protocol)
			switch {
			case a.spec.Address == b.spec.Address && a.spec.Protocol != b.spec.Protocol:
				why = append(why, other+": one socket serves one protocol")
			case a.spec.Address != b.spec.Address && (unspecified(a.spec.Address) || unspecified(b.spec.Address)):
				why = append(why, other+": a socket bound to every address cannot share its port with another address")
			case a.spec.Address == b.spec.Address && !slices.Equal(trustedSources(a.spec), trustedSources(b.spec)):
				why = append(why, other+": listeners sharing a socket must agree on proxyProtocol")
			}
		}
		if len(why) > 0 {
			dropped[a] = true
			t.status.reject(a.gateway, v1alpha1.ReasonListenerConflict,
				fmt.Sprintf("%s: %s %s conflicts with %s", a.field(), a.socket(), a.spec.Protocol, strings.Join(why, ", and ")))
		}
	}
	return dropped
}

// resolveCerts resolves an HTTPS or TLS listener's certificate references. It reports
// false when one does not resolve: the listener is then dropped.
func (t *translator) resolveCerts(e *gwListener) bool {
	if e.spec.TLS == nil {
		return true
	}
	ok := true
	for i, name := range e.spec.TLS.CertificateRefs {
		r := ref{e.gateway.Namespace, name}
		if !t.certs[r] {
			t.status.unresolved(e.gateway, v1alpha1.ReasonCertNotFound,
				fmt.Sprintf("%s.tls.certificateRefs[%d]: %s", e.field(), i, t.missing(v1alpha1.KindCertificate, r)))
			ok = false
			continue
		}
		e.certs = append(e.certs, r.irName())
	}
	return ok
}

// buildListeners merges the listeners that survived into IR listeners, ordered by
// port and then address.
func (t *translator) buildListeners(all []*gwListener, dropped map[*gwListener]bool) []ir.Listener {
	groups := map[string][]*gwListener{}
	var names []string
	for _, e := range all {
		n := e.socket()
		if groups[n] == nil {
			names = append(names, n)
		}
		groups[n] = append(groups[n], e)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := groups[names[i]][0].spec, groups[names[j]][0].spec
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Address < b.Address
	})
	var out []ir.Listener
	for _, n := range names {
		first := groups[n][0].spec
		l := ir.Listener{Name: n, Address: first.Address, Port: first.Port, Protocol: ir.Protocol(first.Protocol)}
		b := &listenerBuild{index: len(out), name: n, protocol: first.Protocol, vhosts: map[string][]*routeEntry{}}
		for _, e := range groups[n] {
			if dropped[e] {
				continue
			}
			e.build = b
			l.Gateways = append(l.Gateways, e.name)
			if cidrs := trustedSources(e.spec); cidrs != nil && l.ProxyProtocol == nil {
				l.ProxyProtocol = &ir.ProxyProtocolAccept{TrustedCIDRs: cidrs}
			}
			for _, c := range e.certs {
				if !contains(l.Certificates, c) {
					l.Certificates = append(l.Certificates, c)
				}
			}
		}
		if len(l.Gateways) == 0 {
			continue
		}
		t.built = append(t.built, b)
		out = append(out, l)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// trustedSources returns a listener's PROXY protocol sources as masked prefixes
// ("10.0.0.0/8", an address as "/32" or "/128"), sorted and without duplicates, or
// nil when the listener does not accept the PROXY protocol.
func trustedSources(l *v1alpha1.Listener) []string {
	if l.ProxyProtocol == nil {
		return nil
	}
	out := []string{}
	for _, c := range l.ProxyProtocol.TrustedCIDRs {
		if p, ok := v1alpha1.ParseTrustedSource(c); ok { // validated
			out = append(out, p.String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

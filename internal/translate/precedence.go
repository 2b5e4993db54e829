package translate

import (
	"sort"
	"strings"

	"portico.dev/portico/internal/ir"
)

// intersectHosts returns the hostnames a route serves on a listener, lower-cased,
// using Gateway API wildcard rules: "*.example.com" covers any name ending in
// ".example.com" (one label or more), and the intersection of a wildcard and a name
// it covers is that name. A route without hosts takes the listener's hostname, and
// "*" (any host) when the listener has none.
func intersectHosts(listener string, routeHosts []string) []string {
	if len(routeHosts) == 0 {
		if listener == "" {
			return []string{"*"}
		}
		return []string{listener}
	}
	var out []string
	for _, h := range routeHosts {
		h = strings.ToLower(h)
		if listener != "" {
			var ok bool
			if h, ok = intersectHost(listener, h); !ok {
				continue
			}
		}
		if !contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// intersectHost intersects two host patterns (exact or "*.suffix").
func intersectHost(a, b string) (string, bool) {
	wa, wb := strings.HasPrefix(a, "*."), strings.HasPrefix(b, "*.")
	switch {
	case a == b:
		return a, true
	case wa && strings.HasSuffix(b, a[1:]): // b is covered by a (b may be a narrower wildcard)
		return b, true
	case wb && strings.HasSuffix(a, b[1:]):
		return a, true
	}
	return "", false
}

// virtualHosts sorts a listener's routes into virtual hosts: exact names
// alphabetically, then wildcards with the longest suffix first, then "*". Inside each,
// routes are in precedence order, and an entry that arrived twice (a route attached
// through two gateways sharing the socket) is kept once.
func (b *listenerBuild) virtualHosts() []ir.VirtualHost {
	if len(b.vhosts) == 0 {
		return nil
	}
	hosts := make([]string, 0, len(b.vhosts))
	for h := range b.vhosts {
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(i, j int) bool { return hostLess(hosts[i], hosts[j]) })
	out := make([]ir.VirtualHost, 0, len(hosts))
	for _, h := range hosts {
		entries := b.vhosts[h]
		sort.SliceStable(entries, func(i, j int) bool { return routeLess(entries[i], entries[j]) })
		vh := ir.VirtualHost{Hostname: h}
		type id struct {
			name  string
			index int
		}
		seen := map[id]bool{}
		for _, e := range entries {
			k := id{e.route.Name, e.route.MatchIndex}
			if seen[k] {
				continue
			}
			seen[k] = true
			vh.Routes = append(vh.Routes, e.route)
		}
		out = append(out, vh)
	}
	return out
}

// hostRank orders exact names (0), wildcards (1) and the catch-all (2).
func hostRank(h string) int {
	switch {
	case h == "*":
		return 2
	case strings.HasPrefix(h, "*."):
		return 1
	}
	return 0
}

func hostLess(a, b string) bool {
	ra, rb := hostRank(a), hostRank(b)
	if ra != rb {
		return ra < rb
	}
	if ra == 1 && len(a) != len(b) {
		return len(a) > len(b)
	}
	return a < b
}

// pathRank orders path match types: Exact, then RegularExpression, then PathPrefix.
func pathRank(t string) int {
	switch t {
	case ir.MatchExact:
		return 0
	case ir.MatchRegex:
		return 1
	}
	return 2
}

// routeLess is route precedence (see the package documentation).
func routeLess(a, b *routeEntry) bool {
	ra, rb := &a.route, &b.route
	if pa, pb := pathRank(ra.Path.Type), pathRank(rb.Path.Type); pa != pb {
		return pa < pb
	}
	if la, lb := len(ra.Path.Value), len(rb.Path.Value); la != lb {
		return la > lb
	}
	if ma, mb := ra.Method != "", rb.Method != ""; ma != mb {
		return ma
	}
	if ha, hb := len(ra.Headers), len(rb.Headers); ha != hb {
		return ha > hb
	}
	if qa, qb := len(ra.QueryParams), len(rb.QueryParams); qa != qb {
		return qa > qb
	}
	if c := olderFirst(a.created, a.hasCreated, ra.Name, b.created, b.hasCreated, rb.Name); c != 0 {
		return c < 0
	}
	if ra.MatchIndex != rb.MatchIndex {
		return ra.MatchIndex < rb.MatchIndex
	}
	return ra.Gateway < rb.Gateway
}

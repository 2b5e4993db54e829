package router

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"portico.dev/portico/internal/ir"
)

// Table is the compiled, immutable routing table of one listener. It is safe for
// concurrent use by any number of goroutines; a new configuration compiles a new
// Table that the data plane swaps in atomically.
type Table struct {
	routes   []*ir.Route // by route ID, in listener order (vhost by vhost)
	compiled []route     // parallel to routes
	hosts    hostIndex
}

// route is the compiled form of one ir.Route's match conditions.
type route struct {
	method  string
	path    pathKind
	value   string         // exact path, or prefix without its trailing slash ("/" is "")
	re      *regexp.Regexp // anchored path regex
	reLit   string         // literal every path the regex matches starts with
	headers []valueMatch
	query   []valueMatch
}

// pathKind is a route's path match type.
type pathKind uint8

const (
	pathExact pathKind = iota
	pathPrefix
	pathRegex
)

// valueMatch is one compiled header or query-parameter condition.
type valueMatch struct {
	name  string         // canonical header name, or raw query parameter name
	value string         // exact value when re is nil
	re    *regexp.Regexp // anchored regex, or nil for an exact match
	host  bool           // header match on "Host": compare the raw Host value
}

// Compile builds a table from a listener. The virtual hosts and their routes must be in
// match order (as translation emits them); Compile keeps that order. It fails only on a
// condition it cannot compile, such as an invalid regex or an unknown match type.
//
// Routes of a virtual host whose hostname repeats an earlier one still get IDs but
// never match: the first virtual host owns the name.
//
// The table keeps shallow copies of the listener's routes: their pointer fields
// (filters, rewrites) are shared and must not be modified afterwards.
func Compile(l *ir.Listener) (*Table, error) {
	n := 0
	for i := range l.VirtualHosts {
		n += len(l.VirtualHosts[i].Routes)
	}
	t := &Table{
		routes:   make([]*ir.Route, 0, n),
		compiled: make([]route, 0, n),
	}
	c := compiler{regexps: map[string]*regexp.Regexp{}}
	copies := make([]ir.Route, 0, n)
	for i := range l.VirtualHosts {
		vh := &l.VirtualHosts[i]
		v := newVHost()
		for j := range vh.Routes {
			r := &vh.Routes[j]
			cr, err := c.route(r)
			if err != nil {
				return nil, fmt.Errorf("router: listener %q host %q route %q (match %d): %w",
					l.Name, vh.Hostname, r.Name, r.MatchIndex, err)
			}
			id := int32(len(t.routes))
			copies = append(copies, *r)
			t.routes = append(t.routes, &copies[len(copies)-1])
			t.compiled = append(t.compiled, cr)
			v.add(id, &cr)
		}
		t.hosts.add(vh.Hostname, v)
	}
	return t, nil
}

// Routes returns the routes by ID: Match's result indexes this slice, so the data plane
// can keep per-route runtime state (plugin chains, backend pickers) in a parallel
// slice. IDs follow the listener's order, virtual host by virtual host. The slice and
// the routes are shared with the table and must not be modified.
func (t *Table) Routes() []*ir.Route { return t.routes }

// MatchedPrefix returns, for a route whose path match is PathPrefix, the part of the
// request path the prefix matched, so the data plane can apply ReplacePrefixMatch
// rewrites: the prefix value without its trailing slash, and "" for the prefix "/".
// A path the route matched starts with it and continues with "/" or ends there, so
// path[len(prefix):] is the remainder to keep. ok is false for other path match types
// or an ID out of range. The prefix as configured stays in Routes()[id].Path.Value.
func (t *Table) MatchedPrefix(id int) (prefix string, ok bool) {
	if id < 0 || id >= len(t.compiled) || t.compiled[id].path != pathPrefix {
		return "", false
	}
	return t.compiled[id].value, true
}

// Match finds the route for a request. host is the raw Host header (it may carry a
// port, mixed case, a trailing dot, or an IPv6 literal in brackets); the path is
// r.URL.Path. It returns the route's ID and true, or -1 and false when no route
// matches. Only the most specific virtual host for the host is consulted (see the
// package documentation). Match does not allocate, except to decode a query value
// that contains escapes for a regex query match, to join a repeated header for a
// regex header match, or when more than maxLists-1 nested prefixes of one path all
// carry routes.
func (t *Table) Match(host string, r *http.Request) (id int, ok bool) {
	v := t.hosts.lookup(host)
	if v == nil {
		return -1, false
	}
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	// Candidates come as ascending ID lists: the exact-path routes and those of each trie
	// node on the path. Merging them so the lowest ID (highest precedence) that matches
	// wins gives exactly the route a linear scan would choose. The array keeps the lists
	// on the stack for up to maxLists route-bearing levels.
	var stack [maxLists][]int32
	lists := stack[:0]
	if ids := v.exact[path]; len(ids) > 0 {
		lists = append(lists, ids)
	}
	for n := v.walk(path); n != nil; n = n.parent {
		if len(n.routes) > 0 {
			lists = append(lists, n.routes)
		}
	}
	for {
		best := -1
		for i, l := range lists {
			if len(l) > 0 && (best < 0 || l[0] < lists[best][0]) {
				best = i
			}
		}
		if best < 0 {
			return -1, false
		}
		id := lists[best][0]
		lists[best] = lists[best][1:]
		cr := &t.compiled[id]
		if cr.path == pathRegex && !cr.matchRegexPath(path) {
			continue
		}
		if cr.matchRest(host, r) {
			return int(id), true
		}
	}
}

// maxLists bounds the candidate lists Match keeps on the stack: the exact-path list
// and one per trie level carrying routes. Deeper nesting still works; it allocates.
const maxLists = 8

// compiler compiles routes, sharing compiled regexes between identical expressions.
type compiler struct {
	regexps map[string]*regexp.Regexp
}

func (c *compiler) route(r *ir.Route) (route, error) {
	cr := route{method: r.Method}
	switch r.Path.Type {
	case ir.MatchExact:
		cr.path, cr.value = pathExact, r.Path.Value
	case ir.MatchPrefix:
		if !strings.HasPrefix(r.Path.Value, "/") {
			return cr, fmt.Errorf("path prefix %q must start with /", r.Path.Value)
		}
		cr.path, cr.value = pathPrefix, strings.TrimSuffix(r.Path.Value, "/")
	case ir.MatchRegex:
		re, err := c.regexp(r.Path.Value)
		if err != nil {
			return cr, fmt.Errorf("path: %w", err)
		}
		cr.path, cr.re = pathRegex, re
		cr.reLit, _ = re.LiteralPrefix()
	default:
		return cr, fmt.Errorf("unknown path match type %q", r.Path.Type)
	}
	var err error
	if cr.headers, err = c.values(r.Headers, true); err != nil {
		return cr, err
	}
	if cr.query, err = c.values(r.QueryParams, false); err != nil {
		return cr, err
	}
	return cr, nil
}

func (c *compiler) values(ms []ir.ValueMatch, header bool) ([]valueMatch, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	out := make([]valueMatch, len(ms))
	for i, m := range ms {
		vm := valueMatch{name: m.Name, value: m.Value}
		if header {
			vm.name = http.CanonicalHeaderKey(m.Name)
			vm.host = vm.name == "Host"
		}
		switch m.Type {
		case ir.MatchExact, "":
		case ir.MatchRegex:
			re, err := c.regexp(m.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Name, err)
			}
			vm.re = re
		default:
			return nil, fmt.Errorf("%s: unknown match type %q", m.Name, m.Type)
		}
		out[i] = vm
	}
	return out, nil
}

// regexp compiles expr anchored at both ends, so it must match the whole input.
func (c *compiler) regexp(expr string) (*regexp.Regexp, error) {
	if re, ok := c.regexps[expr]; ok {
		return re, nil
	}
	// Compile the bare expression first: it rejects input such as "a)|(b" that would
	// otherwise escape the anchoring group below.
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		// Only an unterminated \Q quote can make a valid expression fail here (it
		// swallows the closing group); end the quote where the expression ends.
		if re, err = regexp.Compile("^(?:" + expr + `\E)$`); err != nil {
			return nil, err
		}
	}
	c.regexps[expr] = re
	return re, nil
}

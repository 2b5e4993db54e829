package router

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"portico.dev/portico/internal/ir"
)

// Table is the compiled, immutable routing table of one listener. It is safe for
// concurrent use by any number of goroutines; a new configuration compiles a new
// Table that the data plane swaps in atomically.
//
// Each virtual host is compiled on its own (routes, conditions and path index, with
// route IDs local to it) and placed in the table at an offset, so a table compiled with
// CompileFrom takes the compiled virtual hosts of the previous table whose routes did
// not change, instead of compiling them again.
type Table struct {
	routes []*ir.Route // by route ID, in listener order (vhost by vhost)
	hosts  hostIndex
	spans  []HostSpan // per virtual host of the listener, in order
	vhosts []*vhost   // parallel to spans
}

// HostSpan places one virtual host of the listener in a table: its routes have the IDs
// First to First+Len-1. Prev is the index (into its Spans) of the virtual host of the
// previous table given to CompileFrom whose compiled form this one reuses, or -1 when
// it was compiled anew.
type HostSpan struct {
	First, Len, Prev int
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
func Compile(l *ir.Listener) (*Table, error) { return CompileFrom(l, nil) }

// CompileFrom is Compile, reusing the compiled virtual hosts of prev (nil: none) whose
// routes are the very ones of a virtual host of l: the same Routes slice (same backing
// array and length), as when l shares its unchanged virtual hosts with the listener
// prev was compiled from. The routes a table was compiled from must therefore not be
// modified afterwards. Spans tells which virtual hosts were reused.
func CompileFrom(l *ir.Listener, prev *Table) (*Table, error) {
	n := 0
	for i := range l.VirtualHosts {
		n += len(l.VirtualHosts[i].Routes)
	}
	t := &Table{
		routes: make([]*ir.Route, 0, n),
		spans:  make([]HostSpan, 0, len(l.VirtualHosts)),
		vhosts: make([]*vhost, 0, len(l.VirtualHosts)),
	}
	var old map[*ir.Route]int // first source route → index in prev.vhosts
	if prev != nil && len(prev.vhosts) > 0 {
		old = make(map[*ir.Route]int, len(prev.vhosts))
		for i, v := range prev.vhosts {
			if len(v.src) > 0 {
				old[&v.src[0]] = i
			}
		}
	}
	c := compiler{regexps: map[string]*regexp.Regexp{}}
	for i := range l.VirtualHosts {
		vh := &l.VirtualHosts[i]
		span := HostSpan{First: len(t.routes), Len: len(vh.Routes), Prev: -1}
		var v *vhost
		if len(vh.Routes) > 0 {
			if j, ok := old[&vh.Routes[0]]; ok && len(prev.vhosts[j].src) == len(vh.Routes) {
				v, span.Prev = prev.vhosts[j], j
			}
		}
		if v == nil {
			var err error
			if v, err = c.vhost(vh); err != nil {
				return nil, fmt.Errorf("router: listener %q %w", l.Name, err)
			}
		}
		for j := range v.routes {
			t.routes = append(t.routes, &v.routes[j])
		}
		t.hosts.add(vh.Hostname, hostRef{v: v, base: int32(span.First)})
		t.spans = append(t.spans, span)
		t.vhosts = append(t.vhosts, v)
	}
	return t, nil
}

// vhost compiles the routes of one virtual host, with IDs local to it.
func (c *compiler) vhost(vh *ir.VirtualHost) (*vhost, error) {
	v := newVHost()
	v.src = vh.Routes
	v.routes = make([]ir.Route, len(vh.Routes))
	v.compiled = make([]route, len(vh.Routes))
	copy(v.routes, vh.Routes)
	for j := range v.routes {
		r := &v.routes[j]
		cr, err := c.route(r)
		if err != nil {
			return nil, fmt.Errorf("host %q route %q (match %d): %w", vh.Hostname, r.Name, r.MatchIndex, err)
		}
		v.compiled[j] = cr
		v.add(int32(j), &v.compiled[j])
	}
	return v, nil
}

// Spans places the listener's virtual hosts in the table's route IDs, in order. The
// slice is shared with the table and must not be modified.
func (t *Table) Spans() []HostSpan { return t.spans }

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
	if id < 0 || id >= len(t.routes) {
		return "", false
	}
	// Spans are contiguous: the last one starting at or before id holds it.
	i := sort.Search(len(t.spans), func(i int) bool { return t.spans[i].First > id }) - 1
	cr := &t.vhosts[i].compiled[id-t.spans[i].First]
	if cr.path != pathPrefix {
		return "", false
	}
	return cr.value, true
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
	ref := t.hosts.lookup(host)
	v := ref.v
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
		cr := &v.compiled[id]
		if cr.path == pathRegex && !cr.matchRegexPath(path) {
			continue
		}
		if cr.matchRest(host, r) {
			return int(ref.base + id), true
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

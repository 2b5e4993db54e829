package router

import (
	"strings"

	"portico.dev/portico/internal/ir"
)

// vhost is one compiled virtual host: its routes, their compiled conditions, and an
// index of them by path. Route IDs are local to the virtual host (a table adds the
// virtual host's offset); every list holds IDs in ascending order, which is precedence
// order. A vhost is immutable and may be shared by successive tables.
type vhost struct {
	src      []ir.Route         // the listener's routes it was compiled from (identity for reuse)
	routes   []ir.Route         // shallow copies of src, by local ID
	compiled []route            // parallel to routes
	exact    map[string][]int32 // exact path -> routes
	root     *node              // prefix and regex routes, by path segment
}

// node is one path segment of the trie. routes lists, in precedence order, the prefix
// routes whose prefix ends here (they match any path reaching this node) and the regex
// routes whose literal prefix ends here (they may match such a path and must be run).
// A path's candidates are the routes of the deepest node it reaches and of that node's
// ancestors; each route is stored once, so memory stays linear in the routes.
type node struct {
	parent   *node
	children map[string]*node
	routes   []int32
}

func newVHost() *vhost {
	return &vhost{root: &node{}}
}

// add indexes a compiled route. IDs must be added in ascending order.
func (v *vhost) add(id int32, r *route) {
	switch r.path {
	case pathExact:
		if v.exact == nil {
			v.exact = map[string][]int32{}
		}
		v.exact[r.value] = append(v.exact[r.value], id)
	case pathPrefix:
		n := v.root.descend(r.value)
		n.routes = append(n.routes, id)
	case pathRegex:
		// Every path the regex matches starts with its literal prefix, so it also starts
		// with the whole segments in it: "/api/v[0-9]" needs "/api/".
		dirs := ""
		if i := strings.LastIndexByte(r.reLit, '/'); i > 0 && r.reLit[0] == '/' {
			dirs = r.reLit[:i]
		}
		n := v.root.descend(dirs)
		n.routes = append(n.routes, id)
	}
}

// descend returns the node for a path of whole segments ("" for the root, else
// "/seg1/seg2"), creating missing nodes.
func (n *node) descend(segments string) *node {
	if segments == "" {
		return n
	}
	for seg := range strings.SplitSeq(segments[1:], "/") {
		child := n.children[seg]
		if child == nil {
			child = &node{parent: n}
			if n.children == nil {
				n.children = map[string]*node{}
			}
			n.children[seg] = child
		}
		n = child
	}
	return n
}

// walk returns the deepest trie node whose segments are all whole segments of path. A
// path not starting with "/" reaches only the root, whose prefix routes ("/") match
// everything.
func (v *vhost) walk(path string) *node {
	n := v.root
	if len(n.children) == 0 || !strings.HasPrefix(path, "/") {
		return n
	}
	rest := path[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		child := n.children[seg]
		if child == nil {
			return n
		}
		n = child
		if !more || len(n.children) == 0 {
			return n
		}
		rest = tail
	}
}

// matchRegexPath reports whether a regex route's anchored expression matches path;
// the literal prefix check rejects most paths without running the regex.
func (r *route) matchRegexPath(path string) bool {
	return strings.HasPrefix(path, r.reLit) && r.re.MatchString(path)
}

package l4

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy/proxyproto"
	"portico.dev/portico/internal/proxy/upstream"
)

// DefaultUDPIdle closes a UDP session after this much silence when its route
// sets no idle timeout.
const DefaultUDPIdle = 60 * time.Second

// State is the compiled, immutable configuration of one L4 listener: what a
// new connection (or UDP session) needs. A Listener swaps it atomically; a
// connection keeps the route it started with.
type State struct {
	name     string
	protocol ir.Protocol
	accept   *proxyproto.Policy // nil: no PROXY header expected
	exact    map[string]*route  // TLS: SNI name -> route
	wild     []wildRoute        // TLS: "*.suffix" names, longest suffix first
	fallback *route             // TCP/UDP: the route; TLS: the route without SNI
}

type wildRoute struct {
	suffix string // ".example.com"
	r      *route
}

// route is one compiled StreamRoute.
type route struct {
	name     string
	backends []backend
	total    uint64
	idle     time.Duration
}

type backend struct {
	up     *upstream.Upstream
	cumul  uint64 // cumulative weight
	proxyV int    // PROXY protocol version to send (0: none)
}

// Compile builds the state of listener l from the stream routes attached to it
// (in precedence order) and the live upstreams. Errors name the listener and
// the route or upstream at fault.
func Compile(l *ir.Listener, routes []ir.StreamRoute, ups map[string]*upstream.Upstream) (*State, error) {
	st := &State{name: l.Name, protocol: l.Protocol, exact: map[string]*route{}}
	switch l.Protocol {
	case ir.TCP, ir.TLS, ir.UDP:
	default:
		return nil, fmt.Errorf("l4: listener %q: protocol %q is not L4", l.Name, l.Protocol)
	}
	if pp := l.ProxyProtocol; pp != nil && l.Protocol != ir.UDP {
		pol, err := proxyproto.NewPolicy(pp.TrustedCIDRs, 0)
		if err != nil {
			return nil, fmt.Errorf("l4: listener %q: %w", l.Name, err)
		}
		st.accept = pol
	}
	for i := range routes {
		sr := &routes[i]
		r, err := compileRoute(sr, ups)
		if err != nil {
			return nil, fmt.Errorf("l4: listener %q stream route %q: %w", l.Name, sr.Name, err)
		}
		if l.Protocol != ir.TLS || len(sr.SNI) == 0 {
			if st.fallback == nil {
				st.fallback = r
			}
			continue
		}
		for _, name := range sr.SNI {
			name = normalizeHost(name)
			if suffix, ok := strings.CutPrefix(name, "*"); ok {
				st.wild = append(st.wild, wildRoute{suffix: suffix, r: r})
			} else if st.exact[name] == nil {
				st.exact[name] = r
			}
		}
	}
	sort.SliceStable(st.wild, func(i, j int) bool { return len(st.wild[i].suffix) > len(st.wild[j].suffix) })
	return st, nil
}

func compileRoute(sr *ir.StreamRoute, ups map[string]*upstream.Upstream) (*route, error) {
	r := &route{name: sr.Name, idle: time.Duration(sr.IdleTimeoutMillis) * time.Millisecond}
	for _, b := range sr.Backends {
		if b.Weight <= 0 {
			continue
		}
		u := ups[b.Upstream]
		if u == nil {
			return nil, fmt.Errorf("unknown upstream %q", b.Upstream)
		}
		var v int
		if p := u.Config().ProxyProtocol; p != "" {
			var err error
			if v, err = proxyproto.ParseVersion(p); err != nil {
				return nil, fmt.Errorf("upstream %q: %w", b.Upstream, err)
			}
		}
		r.total += uint64(b.Weight)
		r.backends = append(r.backends, backend{up: u, cumul: r.total, proxyV: v})
	}
	return r, nil
}

// match returns the route for a server name ("" when the client sent none), or nil.
func (st *State) match(sni string) *route {
	if st.protocol != ir.TLS {
		return st.fallback
	}
	if sni != "" {
		if r := st.exact[sni]; r != nil {
			return r
		}
		for _, w := range st.wild {
			// "*.example.com" matches one or more labels before the suffix.
			if len(sni) > len(w.suffix) && strings.HasSuffix(sni, w.suffix) {
				return w.r
			}
		}
	}
	return st.fallback
}

// pickBackend chooses a backend by weight; nil when the route has none.
func (r *route) pickBackend() *backend {
	switch len(r.backends) {
	case 0:
		return nil
	case 1:
		return &r.backends[0]
	}
	n := rand.Uint64N(r.total)
	for i := range r.backends {
		if n < r.backends[i].cumul {
			return &r.backends[i]
		}
	}
	return &r.backends[len(r.backends)-1]
}

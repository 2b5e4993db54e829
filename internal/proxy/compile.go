package proxy

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/proxy/router"
	"portico.dev/portico/internal/proxy/upstream"
)

// listenerState is the immutable compiled form of one ir.Listener: everything a
// request needs, resolved once per swap.
type listenerState struct {
	name     string
	address  string
	port     int
	gateways []string
	gateway  string // first contributing gateway listener, for unmatched requests

	tlsConfig *tls.Config // nil for plaintext
	table     *router.Table
	routes    []*compiledRoute // parallel to table.Routes()
	hosts     []hostState      // parallel to table.Spans()
	notFound  *observe.RouteMetrics
	gen       *pluginGen // the snapshot's plugin instances (plugins.go)
}

// hostState tells whether the compiled routes of one virtual host can serve in the
// next state of the listener when the router reuses the virtual host (its routes did
// not change): they must run no plugins (chains belong to one snapshot's plugin
// generation) and their upstreams must be the ones the next snapshot resolves.
type hostState struct {
	plugins bool                 // some route runs plugins: compile again
	ups     []*upstream.Upstream // distinct upstreams of the routes (backends, mirrors)
}

// reusable reports whether the compiled routes of h still hold with the upstreams ups.
func (h *hostState) reusable(ups map[string]*upstream.Upstream) bool {
	if h.plugins {
		return false
	}
	for _, u := range h.ups {
		if ups[u.Name()] != u {
			return false
		}
	}
	return true
}

// compiledRoute is the per-route runtime state kept next to the router's table.
type compiledRoute struct {
	name    string
	gateway string
	metrics *observe.RouteMetrics

	backends []*upstream.Upstream
	cumul    []uint64 // cumulative weights, parallel to backends
	total    uint64

	prefix     string // matched prefix (no trailing slash) of a PathPrefix route
	isPrefix   bool
	reqHeaders *headerOps
	resHeaders *headerOps
	rewrite    *pathRewrite
	hostname   string // Host rewrite, "" keeps the client's Host
	redirect   *redirect
	timeout    time.Duration
	idle       time.Duration

	// Traffic policy; policy is set when retry or mirror needs the slow path.
	policy bool
	retry  *retryPolicy
	states []*upstreamState           // parallel to backends, with retry
	stats  []*observe.TrafficCounters // parallel to backends, with retry
	mirror *mirrorPolicy
	fault  *faultPolicy

	plugins *plugin.Chain // nil: the route runs no plugin
}

// compileListener compiles l; pb (nil: no plugins) builds the routes' plugin chains.
// prev (nil: none) is the listener's state in force: the virtual hosts whose routes l
// shares with it keep their compiled form when still valid (see hostState).
func compileListener(l *ir.Listener, ups map[string]*upstream.Upstream, certs map[string]loadedCert, m *observe.Metrics, pb *pluginBuilder, prev *listenerState) (*listenerState, error) {
	var prevTable *router.Table
	if prev != nil {
		prevTable = prev.table
	}
	table, err := router.CompileFrom(l, prevTable)
	if err != nil {
		return nil, fmt.Errorf("proxy: listener %q: %w", l.Name, err)
	}
	st := &listenerState{
		name:     l.Name,
		address:  l.Address,
		port:     int(l.Port),
		gateways: l.Gateways,
		table:    table,
	}
	if pb != nil {
		st.gen = pb.gen
	}
	if len(l.Gateways) > 0 {
		st.gateway = l.Gateways[0]
	}
	st.notFound = m.Route(st.gateway, "")
	if l.Protocol == ir.HTTPS {
		sel, err := newCertSelector(l, certs)
		if err != nil {
			return nil, err
		}
		st.tlsConfig = sel.tlsConfig()
	}
	routes := table.Routes()
	spans := table.Spans()
	st.routes = make([]*compiledRoute, len(routes))
	st.hosts = make([]hostState, len(spans))
	for i, sp := range spans {
		if sp.Prev >= 0 && prev.hosts[sp.Prev].reusable(ups) {
			from := prevTable.Spans()[sp.Prev].First
			copy(st.routes[sp.First:sp.First+sp.Len], prev.routes[from:from+sp.Len])
			st.hosts[i] = prev.hosts[sp.Prev]
			continue
		}
		h := &st.hosts[i]
		seen := map[*upstream.Upstream]bool{}
		for id := sp.First; id < sp.First+sp.Len; id++ {
			r := routes[id]
			cr, err := compileRoute(table, id, r, ups, m)
			if err == nil {
				cr.plugins, err = pb.chain(r)
			}
			if err != nil {
				return nil, fmt.Errorf("proxy: listener %q route %q (match %d): %w", l.Name, r.Name, r.MatchIndex, err)
			}
			st.routes[id] = cr
			h.note(r, cr, seen)
		}
	}
	return st, nil
}

// note records what decides the reuse of a compiled route of the virtual host; seen
// holds the upstreams already in h.ups.
func (h *hostState) note(r *ir.Route, cr *compiledRoute, seen map[*upstream.Upstream]bool) {
	h.plugins = h.plugins || len(r.Plugins) > 0 || cr.plugins != nil
	add := func(u *upstream.Upstream) {
		if !seen[u] {
			seen[u] = true
			h.ups = append(h.ups, u)
		}
	}
	for _, u := range cr.backends {
		add(u)
	}
	if cr.mirror != nil {
		add(cr.mirror.up)
	}
}

func compileRoute(t *router.Table, id int, r *ir.Route, ups map[string]*upstream.Upstream, m *observe.Metrics) (*compiledRoute, error) {
	cr := &compiledRoute{
		name:       r.Name,
		gateway:    r.Gateway,
		metrics:    m.Route(r.Gateway, r.Name),
		reqHeaders: compileHeaderOps(r.RequestHeaders),
		resHeaders: compileHeaderOps(r.ResponseHeaders),
		timeout:    time.Duration(r.TimeoutMillis) * time.Millisecond,
		idle:       time.Duration(r.IdleTimeoutMillis) * time.Millisecond,
		retry:      compileRetry(r.Retry),
		fault:      compileFault(r.Fault),
	}
	cr.prefix, cr.isPrefix = t.MatchedPrefix(id)
	for _, b := range r.Backends {
		if b.Weight <= 0 {
			continue
		}
		u := ups[b.Upstream]
		if u == nil {
			return nil, fmt.Errorf("unknown upstream %q", b.Upstream)
		}
		cr.total += uint64(b.Weight)
		cr.backends = append(cr.backends, u)
		cr.cumul = append(cr.cumul, cr.total)
	}
	if cr.retry != nil {
		for _, u := range cr.backends {
			cr.states = append(cr.states, stateOf(u))
			cr.stats = append(cr.stats, m.Traffic(u.Name()))
		}
	}
	if mr := r.Mirror; mr != nil && mr.Percent > 0 { // translation fills the default (100)
		u := ups[mr.Upstream]
		if u == nil {
			return nil, fmt.Errorf("unknown mirror upstream %q", mr.Upstream)
		}
		cr.mirror = &mirrorPolicy{up: u, state: stateOf(u), stats: m.Traffic(u.Name()), percent: mr.Percent}
	}
	cr.policy = cr.retry != nil || cr.mirror != nil
	if rw := r.Rewrite; rw != nil {
		cr.hostname = rw.Hostname
		cr.rewrite = newPathRewrite(rw.FullPath, rw.PrefixPath)
	}
	if rd := r.Redirect; rd != nil {
		cr.redirect = &redirect{
			scheme:   rd.Scheme,
			hostname: rd.Hostname,
			port:     int(rd.Port),
			path:     newPathRewrite(rd.FullPath, rd.PrefixPath),
			status:   rd.StatusCode,
		}
		if cr.redirect.status == 0 {
			cr.redirect.status = http.StatusFound
		}
	}
	return cr, nil
}

package proxy

import (
	"slices"
	"strings"
	"testing"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
)

// sharingCopy copies s the way a snapshot rebuilt from a delta is made: new lists, the
// same virtual hosts (their Routes slices) and upstreams.
func sharingCopy(s *ir.Snapshot) *ir.Snapshot {
	c := *s
	c.Listeners = slices.Clone(s.Listeners)
	for i := range c.Listeners {
		c.Listeners[i].VirtualHosts = slices.Clone(s.Listeners[i].VirtualHosts)
	}
	c.Upstreams = slices.Clone(s.Upstreams)
	c.Consumers = slices.Clone(s.Consumers)
	c.ComputeVersion()
	return &c
}

// compiledFor returns the compiled routes serving the virtual host at index host.
func compiledFor(t *testing.T, rt *Runtime, listener string, host int) []*compiledRoute {
	t.Helper()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st := rt.listeners[listener].state.Load()
	sp := st.table.Spans()[host]
	return st.routes[sp.First : sp.First+sp.Len]
}

// TestApplyReusesUnchangedHosts applies snapshots sharing virtual hosts with the one in
// force: unchanged hosts keep their compiled routes and serve as before, changed ones
// serve their new routes, hosts with plugins and hosts whose upstream changed are
// compiled again, and a shared host referencing a removed upstream fails the Apply.
func TestApplyReusesUnchangedHosts(t *testing.T) {
	e := newEnv(t)
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	port := freePort(t)
	l := httpListenerIR(port,
		ir.VirtualHost{Hostname: "a.example", Routes: []ir.Route{prefixRoute("ra", "/", "a")}},
		ir.VirtualHost{Hostname: "b.example", Routes: []ir.Route{prefixRoute("rb", "/", "b")}},
		ir.VirtualHost{Hostname: "k.example", Routes: []ir.Route{withPlugins(prefixRoute("rk", "/", "a"), pspec("key-auth", `{}`))}},
		ir.VirtualHost{Hostname: "*", Routes: []ir.Route{prefixRoute("rany", "/", "b")}},
	)
	s1 := &ir.Snapshot{Listeners: []ir.Listener{l}, Upstreams: []ir.Upstream{upstreamFor("a", addrOf(a)), upstreamFor("b", addrOf(b))},
		Consumers: []ir.Consumer{keyConsumer("alice", "alice-key")}}
	s1.ComputeVersion()
	e.apply(t, s1)
	c := newClient()
	backend := func(host string, hdr ...string) string {
		t.Helper()
		r := get(t, c, base(port)+"/x", append([]string{"Host", host}, hdr...)...)
		if r.status != 200 {
			return itoa(r.status)
		}
		return r.echo.Backend
	}
	check := func(step string, want map[string]string) {
		t.Helper()
		for host, be := range want {
			if got := backend(host, "apikey", "alice-key"); got != be {
				t.Errorf("%s: %s served by %s, want %s", step, host, got, be)
			}
		}
		if got := backend("k.example"); got != "401" {
			t.Errorf("%s: key-auth on k.example answered %s without a key", step, got)
		}
	}
	check("s1", map[string]string{"a.example": "a", "b.example": "b", "k.example": "a", "other": "b"})
	name := l.Name
	aRoutes, kRoutes, anyRoutes := compiledFor(t, e.rt, name, 0), compiledFor(t, e.rt, name, 2), compiledFor(t, e.rt, name, 3)

	// One host changes: the others without plugins keep their compiled routes.
	s2 := sharingCopy(s1)
	s2.Listeners[0].VirtualHosts[1].Routes = []ir.Route{prefixRoute("rb", "/", "a")}
	s2.ComputeVersion()
	e.apply(t, s2)
	check("s2", map[string]string{"a.example": "a", "b.example": "a", "k.example": "a", "other": "b"})
	if got := compiledFor(t, e.rt, name, 0); !slices.Equal(got, aRoutes) {
		t.Error("s2: the unchanged host a.example was compiled again")
	}
	if got := compiledFor(t, e.rt, name, 3); !slices.Equal(got, anyRoutes) {
		t.Error("s2: the unchanged host * was compiled again")
	}
	if got := compiledFor(t, e.rt, name, 2); got[0] == kRoutes[0] {
		t.Error("s2: the host with plugins kept the chains of the previous generation")
	}

	// Upstream a changes (it now points at backend b): the hosts using it are compiled
	// against the new upstream, the others are kept.
	s3 := sharingCopy(s2)
	s3.Upstreams[0] = upstreamFor("a", addrOf(b))
	s3.ComputeVersion()
	e.apply(t, s3)
	check("s3", map[string]string{"a.example": "b", "b.example": "b", "k.example": "b", "other": "b"})
	if got := compiledFor(t, e.rt, name, 3); !slices.Equal(got, anyRoutes) {
		t.Error("s3: the host * (upstream b, unchanged) was compiled again")
	}

	// Upstream a removed: the shared hosts still referencing it fail the Apply.
	s4 := sharingCopy(s3)
	s4.Upstreams = s4.Upstreams[1:]
	s4.ComputeVersion()
	err := e.rt.Apply(s4)
	if err == nil || !strings.Contains(err.Error(), `host "a.example" route "ra": unknown upstream "a"`) {
		t.Fatalf("s4: %v", err)
	}
	check("after s4", map[string]string{"a.example": "b", "b.example": "b", "k.example": "b", "other": "b"})

	// A host removed: its route's series go, those of routes still served stay.
	if observe.Value(e.metrics.Registry, "portico_http_requests_total", "route", "rb") == -1 {
		t.Fatal("no series for rb")
	}
	s5 := sharingCopy(s3)
	s5.Listeners[0].VirtualHosts = slices.Delete(s5.Listeners[0].VirtualHosts, 1, 2)
	s5.ComputeVersion()
	e.apply(t, s5)
	if v := observe.Value(e.metrics.Registry, "portico_http_requests_total", "route", "rb"); v != -1 {
		t.Errorf("series of the removed route rb still exported: %v", v)
	}
	if v := observe.Value(e.metrics.Registry, "portico_http_requests_total", "route", "ra"); v == -1 {
		t.Error("series of the route ra, still served, was forgotten")
	}
	if got := backend("b.example"); got != "b" {
		t.Errorf("s5: b.example served by %s, want the catch-all's b", got)
	}
}

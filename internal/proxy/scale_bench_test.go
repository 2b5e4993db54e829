package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
)

// scaleSnapshot is one HTTP listener with n routes over 100 hosts and one upstream.
func scaleSnapshot(n, port int) *ir.Snapshot {
	s := &ir.Snapshot{Upstreams: []ir.Upstream{{Name: "u", Protocol: "http", Algorithm: "round-robin",
		Endpoints: []ir.Endpoint{{Address: "127.0.0.1:9", Weight: 1}}}}}
	l := ir.Listener{Name: fmt.Sprintf("127.0.0.1:%d", port), Address: "127.0.0.1", Port: int32(port), Protocol: ir.HTTP, Gateways: []string{"default/http"}}
	hosts := map[string]int{}
	for i := range n {
		h := fmt.Sprintf("h%d.example", i%100)
		idx, ok := hosts[h]
		if !ok {
			idx = len(l.VirtualHosts)
			hosts[h] = idx
			l.VirtualHosts = append(l.VirtualHosts, ir.VirtualHost{Hostname: h})
		}
		l.VirtualHosts[idx].Routes = append(l.VirtualHosts[idx].Routes, ir.Route{
			Name: fmt.Sprintf("r%06d", i), Gateway: "default/http",
			Path:     ir.PathMatch{Type: ir.MatchPrefix, Value: fmt.Sprintf("/svc/%d", i)},
			Backends: []ir.Backend{{Upstream: "u", Weight: 1}},
		})
	}
	s.Listeners = []ir.Listener{l}
	s.ComputeVersion()
	return s
}

// BenchmarkDataPlaneScale splits what a data plane spends on one new 10k-route snapshot,
// and (the *-one-route cases) on one that differs in one route from the one it runs.
func BenchmarkDataPlaneScale(b *testing.B) {
	snap := scaleSnapshot(10000, 8080)
	data, _ := json.Marshal(snap)
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			var s ir.Snapshot
			if err := json.Unmarshal(data, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("version", func(b *testing.B) {
		for b.Loop() {
			c := *snap
			c.ComputeVersion()
		}
	})
	b.Run("validate", func(b *testing.B) {
		for b.Loop() {
			if err := snap.Validate(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// validate-one-route validates a snapshot differing from snap in one route and
	// sharing the rest with it, as the data plane does for a delta.
	b.Run("validate-one-route", func(b *testing.B) {
		next := oneRouteChanged(snap, 0, 42, 7, "/changed")
		for b.Loop() {
			if err := next.ValidateFrom(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("apply", func(b *testing.B) {
		rt := New(Options{})
		defer rt.Shutdown(context.Background())
		port := freePort(b)
		snaps := make([]*ir.Snapshot, 2)
		for i := range snaps {
			snaps[i] = scaleSnapshot(10000, port)
			snaps[i].Listeners[0].VirtualHosts[0].Routes[0].Path.Value = fmt.Sprintf("/changed/%d", i)
			snaps[i].ComputeVersion()
		}
		for i := 0; b.Loop(); i++ {
			s := snaps[i%2]
			if err := rt.Apply(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	// apply-one-route applies snapshots that differ from the one in force in one route,
	// sharing their other virtual hosts with it, as a snapshot rebuilt from a delta does;
	// with-metrics does so with metrics on, as a data plane runs.
	b.Run("apply-one-route", func(b *testing.B) { benchApplyOneRoute(b, Options{}) })
	b.Run("apply-one-route/with-metrics", func(b *testing.B) { benchApplyOneRoute(b, Options{Metrics: observe.NewMetrics()}) })
}

func benchApplyOneRoute(b *testing.B, opts Options) {
	{
		rt := New(opts)
		defer rt.Shutdown(context.Background())
		base := scaleSnapshot(10000, freePort(b))
		snaps := make([]*ir.Snapshot, 2)
		for i := range snaps {
			snaps[i] = oneRouteChanged(base, 0, 42, 7, fmt.Sprintf("/changed/%d", i))
		}
		if err := rt.Apply(base); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			if err := rt.Apply(snaps[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// oneRouteChanged returns a copy of s whose route (listener, host, route) has the path
// value path, sharing everything else with s.
func oneRouteChanged(s *ir.Snapshot, listener, host, route int, path string) *ir.Snapshot {
	c := *s
	c.Listeners = slices.Clone(s.Listeners)
	l := &c.Listeners[listener]
	l.VirtualHosts = slices.Clone(l.VirtualHosts)
	vh := &l.VirtualHosts[host]
	vh.Routes = slices.Clone(vh.Routes)
	vh.Routes[route].Path.Value = path
	c.ComputeVersion()
	return &c
}

package upstream

import (
	"fmt"
	"maps"
	"reflect"
	"sync"

	"portico.dev/portico/internal/ir"
)

// Registry holds live upstreams across config swaps. The data plane calls
// Build for each new snapshot, swaps, then calls Release with the new set so
// that upstreams only the old snapshot used are retired. It is safe for
// concurrent use.
type Registry struct {
	opts   Options
	mu     sync.Mutex
	byName map[string]*Upstream   // newest live upstream per name
	live   map[*Upstream]struct{} // every upstream handed out and not retired
}

// NewRegistry returns an empty registry; zero Options fields get defaults.
func NewRegistry(opts Options) *Registry {
	return &Registry{
		opts:   opts.withDefaults(),
		byName: map[string]*Upstream{},
		live:   map[*Upstream]struct{}{},
	}
}

// Build returns live upstreams for a snapshot's definitions. An upstream
// whose definition is unchanged (deep-equal) is returned as the SAME
// *Upstream (pools, balancer state and later health state survive swaps);
// changed or new ones are fresh. Build retires nothing. Errors (e.g. a bad
// CA PEM) name the upstream; on error nothing is added.
func (r *Registry) Build(ups []ir.Upstream) (map[string]*Upstream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*Upstream, len(ups))
	var fresh []*Upstream
	for _, d := range ups {
		if _, dup := out[d.Name]; dup {
			return nil, fmt.Errorf("upstream %q: defined twice", d.Name)
		}
		if u := r.byName[d.Name]; u != nil && sameDef(&u.def, &d) {
			out[d.Name] = u
			continue
		}
		u, err := newUpstream(cloneDef(d), r.opts)
		if err != nil {
			for _, f := range fresh {
				f.retire()
			}
			return nil, err
		}
		fresh = append(fresh, u)
		out[d.Name] = u
	}
	for _, u := range fresh {
		u.start(r.byName[u.def.Name]) // before health checks: may replace the endpoints
		r.byName[u.def.Name] = u
		r.live[u] = struct{}{}
		u.startHealth()
	}
	return out, nil
}

// Release retires every upstream not in keep: idle connections close now;
// connections in use close when their request ends. In-flight requests are
// never interrupted.
func (r *Registry) Release(keep map[string]*Upstream) {
	kept := make(map[*Upstream]bool, len(keep))
	for _, u := range keep {
		kept[u] = true
	}
	r.mu.Lock()
	var gone []*Upstream
	for u := range r.live {
		if !kept[u] {
			gone = append(gone, u)
			delete(r.live, u)
			if r.byName[u.def.Name] == u {
				delete(r.byName, u.def.Name)
			}
		}
	}
	r.mu.Unlock()
	for _, u := range gone {
		u.retire()
	}
}

// Close retires everything (shutdown).
func (r *Registry) Close() { r.Release(nil) }

// sameDef compares definitions semantically (nil and empty are equal).
func sameDef(a, b *ir.Upstream) bool {
	if a.Name != b.Name || a.Protocol != b.Protocol || a.Algorithm != b.Algorithm ||
		len(a.Endpoints) != len(b.Endpoints) || (a.TLS == nil) != (b.TLS == nil) {
		return false
	}
	if a.TLS != nil && *a.TLS != *b.TLS {
		return false
	}
	if !reflect.DeepEqual(a.UpstreamTraffic, b.UpstreamTraffic) {
		return false
	}
	for i := range a.Endpoints {
		x, y := &a.Endpoints[i], &b.Endpoints[i]
		if x.Address != y.Address || x.Weight != y.Weight || !maps.Equal(x.Labels, y.Labels) {
			return false
		}
	}
	return true
}

// cloneDef copies d so later mutation of the snapshot cannot alter it.
func cloneDef(d ir.Upstream) ir.Upstream {
	d.Endpoints = append([]ir.Endpoint(nil), d.Endpoints...)
	for i := range d.Endpoints {
		d.Endpoints[i].Labels = maps.Clone(d.Endpoints[i].Labels)
	}
	if d.TLS != nil {
		t := *d.TLS
		d.TLS = &t
	}
	d.UpstreamTraffic = cloneTraffic(d.UpstreamTraffic)
	return d
}

// cloneTraffic deep-copies the traffic policy (pointers and slices).
func cloneTraffic(t ir.UpstreamTraffic) ir.UpstreamTraffic {
	t.DNS = clonePtr(t.DNS)
	t.Hash = clonePtr(t.Hash)
	t.Affinity = clonePtr(t.Affinity)
	t.Locality = clonePtr(t.Locality)
	t.CircuitBreaker = clonePtr(t.CircuitBreaker)
	if t.HealthCheck != nil {
		hc := *t.HealthCheck
		hc.Passive = clonePtr(hc.Passive)
		if hc.Active != nil {
			a := *hc.Active
			a.ExpectedStatuses = append([]int32(nil), a.ExpectedStatuses...)
			hc.Active = &a
		}
		t.HealthCheck = &hc
	}
	return t
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

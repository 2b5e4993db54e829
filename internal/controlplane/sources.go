package controlplane

import (
	"context"
	"sync"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

// Source names used by the CLI.
const (
	SourceStore      = "store"
	SourceKubernetes = "kubernetes"
)

// Sources merges several sources into one control plane: it keeps the latest Resources
// of each named source and updates the control plane with their union, in the order the
// sources were named (so on a kind/namespace/name clash the earlier source's object wins
// and translation marks the key Duplicate). The first source is the store: its revision
// is the one passed to Update, so the admin API's read-your-writes keeps working.
type Sources struct {
	cp    *ControlPlane
	names []string

	mu       sync.Mutex
	latest   map[string]*resource.Resources
	revision int64
}

// NewSources merges names (the first one being the store) into cp.
func NewSources(cp *ControlPlane, names ...string) *Sources {
	return &Sources{cp: cp, names: names, latest: map[string]*resource.Resources{}}
}

// Update records the new state of source name and updates the control plane with the
// union. revision is used only for the first source (others pass 0).
func (s *Sources) Update(name string, res *resource.Resources, revision int64) {
	s.mu.Lock()
	defer s.mu.Unlock() // serializes the control plane's updates in the order of the sources' calls
	s.latest[name] = res
	if len(s.names) > 0 && name == s.names[0] {
		s.revision = revision
	}
	parts := make([]*resource.Resources, 0, len(s.names))
	for _, n := range s.names {
		if r := s.latest[n]; r != nil {
			parts = append(parts, r)
		}
	}
	s.cp.Update(Union(parts...), s.revision)
}

// Publisher returns Update bound to name, for a source without revisions.
func (s *Sources) Publisher(name string) func(*resource.Resources) {
	return func(res *resource.Resources) { s.Update(name, res, 0) }
}

// ResourcesAt is ControlPlane.ResourcesAt for the first source alone: the admin API
// reads the store's objects, not the union.
func (s *Sources) ResourcesAt(ctx context.Context, rev int64) (*resource.Resources, bool) {
	if _, ok := s.cp.ResourcesAt(ctx, rev); !ok {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) == 0 {
		return nil, false
	}
	res := s.latest[s.names[0]]
	return res, res != nil
}

// Union returns every object of parts, in order, with their Origins and Validated
// entries (a single part is returned as is). The objects are shared, not copied.
func Union(parts ...*resource.Resources) *resource.Resources {
	switch len(parts) {
	case 0:
		return &resource.Resources{}
	case 1:
		return parts[0]
	}
	out := &resource.Resources{}
	for _, p := range parts {
		out.Gateways = append(out.Gateways, p.Gateways...)
		out.Routes = append(out.Routes, p.Routes...)
		out.Upstreams = append(out.Upstreams, p.Upstreams...)
		out.Certificates = append(out.Certificates, p.Certificates...)
		out.StreamRoutes = append(out.StreamRoutes, p.StreamRoutes...)
		out.Consumers = append(out.Consumers, p.Consumers...)
		out.Plugins = append(out.Plugins, p.Plugins...)
		for k, o := range p.Origins {
			if out.Origins == nil {
				out.Origins = map[resource.Key]resource.Origin{}
			}
			if _, dup := out.Origins[k]; !dup {
				out.Origins[k] = o
			}
		}
		for obj, errs := range p.Validated {
			if out.Validated == nil {
				out.Validated = map[v1alpha1.Object][]v1alpha1.FieldError{}
			}
			out.Validated[obj] = errs
		}
	}
	return out
}

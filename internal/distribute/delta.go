package distribute

import (
	"fmt"
	"reflect"

	"portico.dev/portico/internal/ir"
)

// Deltas work per item of the snapshot's five lists, keyed by name: a changed route
// re-sends its whole listener, a changed endpoint its whole upstream.

func listenerName(l *ir.Listener) string       { return l.Name }
func upstreamName(u *ir.Upstream) string       { return u.Name }
func certificateName(c *ir.Certificate) string { return c.Name }
func streamRouteName(r *ir.StreamRoute) string { return r.Name }
func consumerName(c *ir.Consumer) string       { return c.Name }

// diff returns the delta from base to next, or false when a list has duplicate names
// (a delta cannot express it; a full snapshot is sent instead).
func diff(base, next *ir.Snapshot) (*Delta, bool) {
	d := &Delta{Version: next.Version, BaseVersion: base.Version}
	ok := diffSection(&d.Listeners, base.Listeners, next.Listeners, listenerName) &&
		diffSection(&d.Upstreams, base.Upstreams, next.Upstreams, upstreamName) &&
		diffSection(&d.Certificates, base.Certificates, next.Certificates, certificateName) &&
		diffSection(&d.StreamRoutes, base.StreamRoutes, next.StreamRoutes, streamRouteName) &&
		diffSection(&d.Consumers, base.Consumers, next.Consumers, consumerName)
	return d, ok
}

func diffSection[T any](out *Section[T], base, next []T, name func(*T) string) bool {
	old := make(map[string]*T, len(base))
	for i := range base {
		n := name(&base[i])
		if _, dup := old[n]; dup {
			return false
		}
		old[n] = &base[i]
	}
	seen := make(map[string]bool, len(next))
	out.Order = make([]string, 0, len(next))
	for i := range next {
		n := name(&next[i])
		if seen[n] {
			return false
		}
		seen[n] = true
		out.Order = append(out.Order, n)
		if prev, ok := old[n]; !ok || !reflect.DeepEqual(prev, &next[i]) {
			out.Upserts = append(out.Upserts, next[i])
		}
	}
	for i := range base {
		if n := name(&base[i]); !seen[n] {
			out.Removals = append(out.Removals, n)
		}
	}
	return true
}

// applyDelta rebuilds the snapshot a delta describes from base, the snapshot the data
// plane runs. Items not upserted are shared with base, which is read-only. The result's
// version is recomputed from its content and must equal the announced one.
func applyDelta(base *ir.Snapshot, d *Delta) (*ir.Snapshot, error) {
	if base == nil || base.Version != d.BaseVersion {
		have := ""
		if base != nil {
			have = base.Version
		}
		return nil, fmt.Errorf("delta base %q does not match the running version %q", d.BaseVersion, have)
	}
	var s ir.Snapshot
	var err error
	if s.Listeners, err = patchSection("listeners", base.Listeners, &d.Listeners, listenerName); err != nil {
		return nil, err
	}
	if s.Upstreams, err = patchSection("upstreams", base.Upstreams, &d.Upstreams, upstreamName); err != nil {
		return nil, err
	}
	if s.Certificates, err = patchSection("certificates", base.Certificates, &d.Certificates, certificateName); err != nil {
		return nil, err
	}
	if s.StreamRoutes, err = patchSection("streamRoutes", base.StreamRoutes, &d.StreamRoutes, streamRouteName); err != nil {
		return nil, err
	}
	if s.Consumers, err = patchSection("consumers", base.Consumers, &d.Consumers, consumerName); err != nil {
		return nil, err
	}
	s.ComputeVersion()
	if s.Version != d.Version {
		return nil, fmt.Errorf("delta rebuilt version %q, announced %q", s.Version, d.Version)
	}
	return &s, nil
}

func patchSection[T any](what string, base []T, sec *Section[T], name func(*T) string) ([]T, error) {
	if len(sec.Order) == 0 {
		return nil, nil
	}
	items := make(map[string]*T, len(base)+len(sec.Upserts))
	for i := range base {
		items[name(&base[i])] = &base[i]
	}
	for _, n := range sec.Removals {
		if _, ok := items[n]; !ok {
			return nil, fmt.Errorf("delta %s: removal of unknown %q", what, n)
		}
		delete(items, n)
	}
	for i := range sec.Upserts {
		items[name(&sec.Upserts[i])] = &sec.Upserts[i]
	}
	out := make([]T, 0, len(sec.Order))
	for _, n := range sec.Order {
		it, ok := items[n]
		if !ok {
			return nil, fmt.Errorf("delta %s: %q is neither in the base nor upserted", what, n)
		}
		out = append(out, *it)
	}
	return out, nil
}

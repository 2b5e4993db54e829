package distribute

import (
	"fmt"
	"slices"

	"portico.dev/portico/internal/ir"
)

// Deltas work per item of the snapshot's lists, keyed by name, and per virtual host of
// each listener, keyed by hostname: a changed route re-sends its virtual host, a changed
// endpoint its whole upstream.

func listenerName(l *ir.Listener) string       { return l.Name }
func hostnameOf(v *ir.VirtualHost) string      { return v.Hostname }
func upstreamName(u *ir.Upstream) string       { return u.Name }
func certificateName(c *ir.Certificate) string { return c.Name }
func streamRouteName(r *ir.StreamRoute) string { return r.Name }
func consumerName(c *ir.Consumer) string       { return c.Name }

// diff returns the delta from base to next, or false when a list has duplicate names, or
// a listener duplicate hostnames (a delta cannot express it; a full snapshot is sent
// instead).
func diff(base, next *ir.Snapshot) (*Delta, bool) {
	d := &Delta{Version: next.Version, BaseVersion: base.Version}
	ok := diffListeners(d, base.Listeners, next.Listeners) &&
		diffSection(&d.Upstreams, base.Upstreams, next.Upstreams, upstreamName, deepEqual) &&
		diffSection(&d.Certificates, base.Certificates, next.Certificates, certificateName, deepEqual) &&
		diffSection(&d.StreamRoutes, base.StreamRoutes, next.StreamRoutes, streamRouteName, deepEqual) &&
		diffSection(&d.Consumers, base.Consumers, next.Consumers, consumerName, deepEqual)
	return d, ok
}

// shells returns copies of ls without their virtual hosts.
func shells(ls []ir.Listener) []ir.Listener {
	out := make([]ir.Listener, len(ls))
	for i := range ls {
		out[i] = ls[i].Shell()
	}
	return out
}

// diffListeners diffs the listener shells, then the virtual hosts of each listener of
// next against those of the base listener of the same name (none for a new listener).
func diffListeners(d *Delta, base, next []ir.Listener) bool {
	if !diffSection(&d.Listeners, shells(base), shells(next), listenerName, deepEqual) {
		return false
	}
	old := make(map[string]*ir.Listener, len(base))
	for i := range base {
		old[base[i].Name] = &base[i]
	}
	for i := range next {
		l := &next[i]
		var prev []ir.VirtualHost
		if b := old[l.Name]; b != nil {
			prev = b.VirtualHosts
		}
		sec := VirtualHostSection{Listener: l.Name}
		if !diffSection(&sec.Section, prev, l.VirtualHosts, hostnameOf, hostEqual) {
			return false
		}
		if len(sec.Upserts) == 0 && len(sec.Removals) == 0 && slices.EqualFunc(sec.Order, prev,
			func(n string, v ir.VirtualHost) bool { return n == v.Hostname }) {
			continue // same virtual hosts in the same order
		}
		d.VirtualHosts = append(d.VirtualHosts, sec)
	}
	return true
}

func diffSection[T any](out *Section[T], base, next []T, name func(*T) string, equal func(a, b *T) bool) bool {
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
		if prev, ok := old[n]; !ok || !equal(prev, &next[i]) {
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
// plane runs, whose items are baseItems (nil: encoded here). Items not upserted are
// shared with base, which is read-only, and keep their encodings and hashes; only the
// upserted items are encoded and hashed. The version their hashes give must equal the
// announced one. The rebuilt snapshot is returned with its items.
func applyDelta(base *ir.Snapshot, baseItems *snapshotItems, d *Delta) (*ir.Snapshot, *snapshotItems, error) {
	if base == nil || base.Version != d.BaseVersion {
		have := ""
		if base != nil {
			have = base.Version
		}
		return nil, nil, fmt.Errorf("delta base %q does not match the running version %q", d.BaseVersion, have)
	}
	if baseItems == nil || !baseItems.fits(base) {
		baseItems = itemsOf(base)
	}
	var s ir.Snapshot
	var si snapshotItems
	var err error
	if s.Listeners, si.listeners, err = patchListeners(base.Listeners, baseItems.listeners, d); err != nil {
		return nil, nil, err
	}
	if s.Upstreams, si.upstreams, err = patchSection("upstreams", base.Upstreams, baseItems.upstreams, &d.Upstreams, upstreamName, encodeOne); err != nil {
		return nil, nil, err
	}
	if s.Certificates, si.certificates, err = patchSection("certificates", base.Certificates, baseItems.certificates, &d.Certificates, certificateName, encodeOne); err != nil {
		return nil, nil, err
	}
	if s.StreamRoutes, si.streamRoutes, err = patchSection("streamRoutes", base.StreamRoutes, baseItems.streamRoutes, &d.StreamRoutes, streamRouteName, encodeOne); err != nil {
		return nil, nil, err
	}
	if s.Consumers, si.consumers, err = patchSection("consumers", base.Consumers, baseItems.consumers, &d.Consumers, consumerName, encodeOne); err != nil {
		return nil, nil, err
	}
	s.Version = si.digest().Version()
	if s.Version != d.Version {
		return nil, nil, fmt.Errorf("delta rebuilt version %q, announced %q", s.Version, d.Version)
	}
	return &s, &si, nil
}

// patchListeners rebuilds the listeners and their items: shells from the base or the
// delta, then each listener's virtual hosts from its VirtualHosts entry, or else from the
// base listener of the same name (none for a new listener).
func patchListeners(base []ir.Listener, baseItems []listenerItems, d *Delta) ([]ir.Listener, []listenerItems, error) {
	for i := range d.Listeners.Upserts {
		if u := &d.Listeners.Upserts[i]; len(u.VirtualHosts) > 0 {
			return nil, nil, fmt.Errorf("delta listeners: %q carries virtual hosts outside virtualHosts", u.Name)
		}
	}
	shellItems := make([]item, len(baseItems))
	for i := range baseItems {
		shellItems[i] = baseItems[i].shell
	}
	out, shells, err := patchSection("listeners", base, shellItems, &d.Listeners, listenerName, encodeShell)
	if err != nil {
		return nil, nil, err
	}
	old := make(map[string]int, len(base))
	for i := range base {
		old[base[i].Name] = i
	}
	secs := make(map[string]*VirtualHostSection, len(d.VirtualHosts))
	for i := range d.VirtualHosts {
		sec := &d.VirtualHosts[i]
		if _, dup := secs[sec.Listener]; dup {
			return nil, nil, fmt.Errorf("delta virtualHosts: listener %q twice", sec.Listener)
		}
		secs[sec.Listener] = sec
	}
	items := make([]listenerItems, len(out))
	for i := range out {
		l := &out[i]
		items[i].shell = shells[i]
		var prev []ir.VirtualHost
		var prevItems []item
		if b, ok := old[l.Name]; ok {
			prev, prevItems = base[b].VirtualHosts, baseItems[b].hosts
		}
		sec := secs[l.Name]
		if sec == nil {
			l.VirtualHosts, items[i].hosts = prev, prevItems
			continue
		}
		delete(secs, l.Name)
		what := fmt.Sprintf("listener %q virtualHosts", l.Name)
		if l.VirtualHosts, items[i].hosts, err = patchSection(what, prev, prevItems, &sec.Section, hostnameOf, encodeOne); err != nil {
			return nil, nil, err
		}
	}
	for name := range secs {
		return nil, nil, fmt.Errorf("delta virtualHosts: listener %q is not in the snapshot", name)
	}
	return out, items, nil
}

// patchSection rebuilds one list and its items (baseItems parallel to base): the
// base's items keep their encodings, upserted ones are encoded with enc.
func patchSection[T any](what string, base []T, baseItems []item, sec *Section[T], name func(*T) string, enc func(*T) item) ([]T, []item, error) {
	type entry struct {
		v  *T
		it item
	}
	entries := make(map[string]entry, len(base)+len(sec.Upserts))
	for i := range base {
		entries[name(&base[i])] = entry{&base[i], baseItems[i]}
	}
	for _, n := range sec.Removals {
		if _, ok := entries[n]; !ok {
			return nil, nil, fmt.Errorf("delta %s: removal of unknown %q", what, n)
		}
		delete(entries, n)
	}
	for i := range sec.Upserts {
		u := &sec.Upserts[i]
		entries[name(u)] = entry{u, enc(u)}
	}
	if len(sec.Order) == 0 {
		return nil, nil, nil
	}
	out := make([]T, 0, len(sec.Order))
	items := make([]item, 0, len(sec.Order))
	for _, n := range sec.Order {
		e, ok := entries[n]
		if !ok {
			return nil, nil, fmt.Errorf("delta %s: %q is neither in the base nor upserted", what, n)
		}
		out = append(out, *e.v)
		items = append(items, e.it)
	}
	return out, items, nil
}

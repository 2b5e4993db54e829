package distribute

import (
	"bytes"
	"encoding/json"
	"errors"

	"portico.dev/portico/internal/ir"
)

// item is one item of a snapshot as a data plane keeps it: its JSON encoding and the
// hash of that (ir.HashJSON), the unit ir's versions are computed from.
type item struct {
	json []byte
	hash ir.Hash
}

func encodeItem(v any) item {
	b, err := json.Marshal(v)
	if err != nil { // only an invalid json.RawMessage fails, which never decodes
		return item{hash: ir.HashOf(v)}
	}
	return item{json: b, hash: ir.HashJSON(b)}
}

// encodeOne encodes a list element.
func encodeOne[T any](v *T) item { return encodeItem(v) }

func encodeAll[T any](items []T) []item {
	if len(items) == 0 {
		return nil
	}
	out := make([]item, len(items))
	for i := range items {
		out[i] = encodeItem(&items[i])
	}
	return out
}

func encodeShell(l *ir.Listener) item {
	shell := l.Shell()
	return encodeItem(&shell)
}

// listenerItems are a listener's shell (without virtual hosts) and its virtual hosts.
type listenerItems struct {
	shell item
	hosts []item
}

// snapshotItems are the items of the snapshot a data plane runs, parallel to its lists.
// A delta rebuilds the next snapshot's items from them, encoding only the upserted
// items: their hashes give the version to verify (ir.Digest), their encodings the cache
// file, so neither costs more than the change.
type snapshotItems struct {
	listeners    []listenerItems
	upstreams    []item
	certificates []item
	streamRoutes []item
	consumers    []item
}

// itemsOf encodes every item of s.
func itemsOf(s *ir.Snapshot) *snapshotItems {
	si := &snapshotItems{
		listeners:    make([]listenerItems, len(s.Listeners)),
		upstreams:    encodeAll(s.Upstreams),
		certificates: encodeAll(s.Certificates),
		streamRoutes: encodeAll(s.StreamRoutes),
		consumers:    encodeAll(s.Consumers),
	}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		si.listeners[i] = listenerItems{shell: encodeShell(l), hosts: encodeAll(l.VirtualHosts)}
	}
	return si
}

// fits reports whether si has the shape of s.
func (si *snapshotItems) fits(s *ir.Snapshot) bool {
	if len(si.listeners) != len(s.Listeners) || len(si.upstreams) != len(s.Upstreams) ||
		len(si.certificates) != len(s.Certificates) || len(si.streamRoutes) != len(s.StreamRoutes) ||
		len(si.consumers) != len(s.Consumers) {
		return false
	}
	for i := range si.listeners {
		if len(si.listeners[i].hosts) != len(s.Listeners[i].VirtualHosts) {
			return false
		}
	}
	return true
}

func hashes(items []item) []ir.Hash {
	if len(items) == 0 {
		return nil
	}
	out := make([]ir.Hash, len(items))
	for i := range items {
		out[i] = items[i].hash
	}
	return out
}

// digest returns the item hashes, whose Version is the snapshot's version.
func (si *snapshotItems) digest() *ir.Digest {
	d := &ir.Digest{
		Listeners:    make([]ir.ListenerDigest, len(si.listeners)),
		Upstreams:    hashes(si.upstreams),
		Certificates: hashes(si.certificates),
		StreamRoutes: hashes(si.streamRoutes),
		Consumers:    hashes(si.consumers),
	}
	for i, l := range si.listeners {
		d.Listeners[i] = ir.ListenerDigest{Shell: l.shell.hash, VirtualHosts: hashes(l.hosts)}
	}
	return d
}

// encode returns the snapshot's JSON with the given version, assembled from the items'
// encodings: a listener's virtual hosts are put back into its shell.
func (si *snapshotItems) encode(version string) ([]byte, error) {
	size := 64
	all := [][]item{si.upstreams, si.certificates, si.streamRoutes, si.consumers}
	for _, l := range si.listeners {
		all = append(all, []item{l.shell}, l.hosts)
	}
	for _, items := range all {
		for _, it := range items {
			if it.json == nil {
				return nil, errors.New("an item of the snapshot does not encode")
			}
			size += len(it.json) + 1
		}
	}
	var b bytes.Buffer
	b.Grow(size + 32*len(si.listeners))
	v, _ := json.Marshal(version)
	b.WriteString(`{"version":`)
	b.Write(v)
	if len(si.listeners) > 0 {
		b.WriteString(`,"listeners":[`)
		for i, l := range si.listeners {
			if i > 0 {
				b.WriteByte(',')
			}
			shell := l.shell.json
			if len(l.hosts) == 0 || len(shell) < 2 || shell[len(shell)-1] != '}' {
				b.Write(shell)
				continue
			}
			b.Write(shell[:len(shell)-1])
			writeList(&b, `,"virtualHosts":`, l.hosts)
			b.WriteByte('}')
		}
		b.WriteByte(']')
	}
	for _, sec := range []struct {
		key   string
		items []item
	}{
		{`,"upstreams":`, si.upstreams},
		{`,"certificates":`, si.certificates},
		{`,"streamRoutes":`, si.streamRoutes},
		{`,"consumers":`, si.consumers},
	} {
		if len(sec.items) > 0 {
			writeList(&b, sec.key, sec.items)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeList(b *bytes.Buffer, key string, items []item) {
	b.WriteString(key)
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it.json)
	}
	b.WriteByte(']')
}

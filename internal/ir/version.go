package ir

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
)

// Versions are computed per item, so that a data plane that rebuilds a snapshot from a
// delta hashes only the items that travelled: each item of the snapshot (a listener
// without its virtual hosts, called its shell; each virtual host with its routes; each
// upstream, certificate, stream route and consumer) is hashed from its JSON encoding,
// and the version is a hash of those hashes in snapshot order, with the length of every
// list, so equal content gives equal versions and different content different ones.

// Hash is the SHA-256 of one item's JSON encoding.
type Hash [sha256.Size]byte

// Digest holds the hash of every item of a snapshot, parallel to its lists. Version
// combines them into the snapshot's version.
type Digest struct {
	Listeners    []ListenerDigest
	Upstreams    []Hash
	Certificates []Hash
	StreamRoutes []Hash
	Consumers    []Hash
}

// ListenerDigest is the hash of a listener's shell (the listener without its virtual
// hosts) and of each of its virtual hosts, in order.
type ListenerDigest struct {
	Shell        Hash
	VirtualHosts []Hash
}

// HashOf hashes the JSON encoding of an item: HashJSON of json.Marshal's bytes. A value
// that does not encode (only an invalid json.RawMessage can fail, which Validate
// rejects) hashes the error text instead.
func HashOf(v any) Hash {
	b, err := json.Marshal(v)
	if err != nil {
		return HashJSON([]byte("unencodable: " + err.Error()))
	}
	return HashJSON(b)
}

// HashJSON is the hash of an item whose JSON encoding (json.Marshal's) is b.
func HashJSON(b []byte) Hash { return sha256.Sum256(b) }

// Shell returns a copy of l without its virtual hosts.
func (l *Listener) Shell() Listener {
	shell := *l
	shell.VirtualHosts = nil
	return shell
}

// HashListenerShell hashes l without its virtual hosts.
func HashListenerShell(l *Listener) Hash {
	shell := l.Shell()
	return HashOf(&shell)
}

// Digest hashes every item of s.
func (s *Snapshot) Digest() *Digest {
	d := &Digest{
		Listeners:    make([]ListenerDigest, len(s.Listeners)),
		Upstreams:    hashAll(s.Upstreams),
		Certificates: hashAll(s.Certificates),
		StreamRoutes: hashAll(s.StreamRoutes),
		Consumers:    hashAll(s.Consumers),
	}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		d.Listeners[i] = ListenerDigest{Shell: HashListenerShell(l), VirtualHosts: hashAll(l.VirtualHosts)}
	}
	return d
}

func hashAll[T any](items []T) []Hash {
	if len(items) == 0 {
		return nil
	}
	out := make([]Hash, len(items))
	for i := range items {
		out[i] = HashOf(&items[i])
	}
	return out
}

// versionScheme starts every version hash, so that a change of scheme changes versions.
const versionScheme = "portico.dev/ir version 2\n"

// Version is the snapshot version the item hashes give: the first 8 bytes, in hex, of
// the SHA-256 of the scheme, then for each list (listeners, upstreams, certificates,
// stream routes, consumers) its length and its items' hashes, a listener's being its
// shell's hash, the number of its virtual hosts and their hashes.
func (d *Digest) Version() string {
	h := sha256.New()
	h.Write([]byte(versionScheme))
	writeLen(h, len(d.Listeners))
	for i := range d.Listeners {
		l := &d.Listeners[i]
		h.Write(l.Shell[:])
		writeHashes(h, l.VirtualHosts)
	}
	writeHashes(h, d.Upstreams)
	writeHashes(h, d.Certificates)
	writeHashes(h, d.StreamRoutes)
	writeHashes(h, d.Consumers)
	var sum Hash
	h.Sum(sum[:0])
	return hex.EncodeToString(sum[:8])
}

func writeLen(h hash.Hash, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

func writeHashes(h hash.Hash, hs []Hash) {
	writeLen(h, len(hs))
	for i := range hs {
		h.Write(hs[i][:])
	}
}

// ComputeVersion sets Version to a hash of the content (see Digest.Version), so equal
// configs have equal versions.
func (s *Snapshot) ComputeVersion() {
	s.Version = s.Digest().Version()
}

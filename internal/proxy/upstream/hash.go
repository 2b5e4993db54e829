package upstream

import (
	"net/http"
	"slices"
	"strings"

	"portico.dev/portico/internal/ir"
)

// Consistent hashing uses Maglev (Eisenbud et al., NSDI 2016): a lookup table
// of M slots (M prime, at least 100 × endpoints) filled by letting each
// endpoint claim slots in turn along its own permutation of the table. A
// lookup is one array read, the load is even to within a few percent, and when
// one of N endpoints leaves about 1/N of the keys move (only a little more
// than a ring's minimum). Maglev was chosen over a ring hash for the O(1)
// lookup and its small, flat table. Everything is derived from endpoint
// addresses with a fixed hash, so every data-plane replica builds the same
// table and sends a key to the same endpoint.
//
// When the endpoint a key maps to is unavailable (or avoided), the key is
// rehashed up to hashProbes times through the same table, then falls back to
// rendezvous hashing over the accepted endpoints: keys of healthy endpoints
// never move, and a dead endpoint's keys spread over the others.

// hashProbes bounds the table re-probes for a key whose endpoint is refused.
const hashProbes = 5

// hashPolicy is a compiled ir.HashPolicy.
type hashPolicy struct {
	header   string // canonical header name
	cookie   string
	sourceIP bool
	path     bool
}

func newHashPolicy(p *ir.HashPolicy) *hashPolicy {
	h := &hashPolicy{}
	if p == nil {
		h.sourceIP = true // a consistent-hash upstream without a key: per client
		return h
	}
	*h = hashPolicy{header: http.CanonicalHeaderKey(p.Header), cookie: p.Cookie,
		sourceIP: p.SourceIP, path: p.Path}
	return h
}

// key returns the hash of the request's key; ok is false when the request
// does not carry one (the balancer then picks at random).
func (h *hashPolicy) key(info *PickInfo) (uint64, bool) {
	req := info.Request
	var s string
	switch {
	case h.header != "":
		if req != nil {
			if v := req.Header[h.header]; len(v) > 0 {
				s = v[0]
			}
		}
	case h.cookie != "":
		if req != nil {
			s = cookieValue(req.Header, h.cookie)
		}
	case h.path:
		if req != nil && req.URL != nil {
			s = req.URL.Path
		}
	case h.sourceIP:
		s = info.ClientIP
		if s == "" && req != nil {
			s = req.RemoteAddr
		}
		s = hostOnly(s)
	}
	if s == "" {
		return 0, false
	}
	return hashString(s), true
}

// hashPick maps key to an accepted endpoint (see the package comment above).
func (b *balancer) hashPick(f *filter, key uint64) *Endpoint {
	m := uint64(len(b.table))
	k := key
	for i := 0; i <= hashProbes; i++ {
		if e := b.eps[b.table[k%m]]; f.ok(e) {
			return e
		}
		k = mix64(k + 0x9e3779b97f4a7c15)
	}
	var best *Endpoint
	var bestScore uint64
	for _, e := range b.eps {
		if s := mix64(key ^ e.hashID); (best == nil || s > bestScore) && f.ok(e) {
			best, bestScore = e, s
		}
	}
	return best
}

// buildMaglev fills the lookup table for eps, honouring weights: in each
// round an endpoint claims a slot only when its accumulated share of the
// heaviest weight reaches one.
func buildMaglev(eps []*Endpoint) []uint32 {
	n := len(eps)
	if n == 0 {
		return nil
	}
	m := nextPrime(max(100*n, 4093))
	const empty = ^uint32(0)
	table := make([]uint32, m)
	for i := range table {
		table[i] = empty
	}
	// Fill in address order so that the table does not depend on the order
	// endpoints were listed or resolved in.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(eps[a].Address, eps[b].Address) })
	offset, skip, next := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	credit := make([]float64, n)
	var maxW int32
	for i, e := range eps {
		h := hashString(e.Address)
		offset[i] = h % uint64(m)
		skip[i] = mix64(h^0x5bd1e9955bd1e995)%uint64(m-1) + 1
		maxW = max(maxW, e.Weight)
	}
	for filled := 0; filled < m; {
		for _, i := range order {
			credit[i] += float64(eps[i].Weight) / float64(maxW)
			if credit[i] < 1 {
				continue
			}
			credit[i]--
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			for table[c] != empty {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % uint64(m)
			}
			table[c] = uint32(i)
			next[i]++
			if filled++; filled == m {
				break
			}
		}
	}
	return table
}

func nextPrime(n int) int {
	for ; ; n++ {
		prime := n > 1
		for d := 2; d*d <= n; d++ {
			if n%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			return n
		}
	}
}

// hashString is 64-bit FNV-1a followed by a finaliser: fixed (not seeded per
// process) so that hashes agree across replicas and restarts.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hostOnly strips a port from "host:port" or "[v6]:port"; a bare IPv6
// address is returned unchanged.
func hostOnly(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
		return s
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.IndexByte(s, ':') == i {
		return s[:i]
	}
	return s
}

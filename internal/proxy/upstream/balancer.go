package upstream

import (
	"crypto/tls"
	"sync"
	"sync/atomic"
)

// Endpoint is one live address of an upstream: its weight and, for HTTP/1.1
// upstreams, its pool of idle keep-alive connections. Balancers pick among
// an upstream's endpoints.
type Endpoint struct {
	Address string
	Weight  int32

	up      *Upstream
	pool    pool        // HTTP/1.1 idle connections (unused for h2/h2c)
	tlsConf *tls.Config // "https": per-endpoint config (SNI defaults to the host)
}

// Balancer picks the endpoint for the next request. Implementations must be
// safe for concurrent use, cheap, and allocation-free: Pick runs per request.
// Pick returns nil when there is nothing to pick.
type Balancer interface {
	Pick() *Endpoint
}

// Load-balancing algorithm names understood by newBalancer.
const (
	AlgRoundRobin = "round-robin"
)

// newBalancer builds the balancer for alg. Unknown names (other algorithms
// are not implemented yet) fall back to weighted round-robin; ok reports
// whether alg was recognised.
func newBalancer(alg string, eps []*Endpoint) (b Balancer, ok bool) {
	ok = alg == "" || alg == AlgRoundRobin
	switch {
	case len(eps) == 0:
		return noEndpoints{}, ok
	case len(eps) == 1:
		return single{eps[0]}, ok
	}
	equal := true
	for _, e := range eps[1:] {
		if e.Weight != eps[0].Weight {
			equal = false
			break
		}
	}
	if equal {
		return &roundRobin{eps: eps}, ok
	}
	return newSmoothWRR(eps), ok
}

type noEndpoints struct{}

func (noEndpoints) Pick() *Endpoint { return nil }

type single struct{ e *Endpoint }

func (s single) Pick() *Endpoint { return s.e }

// roundRobin serves equal weights lock-free; its sequence is the one smooth
// weighted round-robin produces for equal weights.
type roundRobin struct {
	eps []*Endpoint
	n   atomic.Uint64
}

func (r *roundRobin) Pick() *Endpoint {
	return r.eps[(r.n.Add(1)-1)%uint64(len(r.eps))]
}

// smoothWRR is nginx's smooth weighted round-robin: on each pick every
// endpoint's current value grows by its weight, the largest wins and is
// lowered by the total. Weights 5,1,1 give a a b a c a a: spread out, exact
// over each cycle. Endpoint counts are small, so a mutex around an O(n) scan
// beats anything cleverer.
type smoothWRR struct {
	mu    sync.Mutex
	eps   []*Endpoint
	w     []int64
	cur   []int64
	total int64
}

func newSmoothWRR(eps []*Endpoint) *smoothWRR {
	s := &smoothWRR{eps: eps, w: make([]int64, len(eps)), cur: make([]int64, len(eps))}
	for i, e := range eps {
		s.w[i] = int64(e.Weight)
		s.total += s.w[i]
	}
	return s
}

func (s *smoothWRR) Pick() *Endpoint {
	s.mu.Lock()
	best := 0
	for i := range s.cur {
		s.cur[i] += s.w[i]
		if s.cur[i] > s.cur[best] {
			best = i
		}
	}
	s.cur[best] -= s.total
	s.mu.Unlock()
	return s.eps[best]
}

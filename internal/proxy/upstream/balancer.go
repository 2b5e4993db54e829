package upstream

import (
	"crypto/tls"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"portico.dev/portico/internal/ir"
)

// Endpoint is one live address of an upstream: its weight and, for HTTP/1.1
// upstreams, its pool of idle keep-alive connections. Balancers pick among
// an upstream's endpoints.
type Endpoint struct {
	Address string
	Weight  int32
	// Labels come from the definition ("zone" drives locality); read-only.
	Labels map[string]string

	up      *Upstream
	pool    pool           // HTTP/1.1 idle connections (unused for h2/h2c)
	tlsConf *tls.Config    // "https": per-endpoint config (SNI defaults to the host)
	hs      endpointHealth // active and passive health state (health.go)

	inflight atomic.Int64 // attempts between begin and end (least-request, ewma)
	lat      latencyEWMA  // peak-EWMA latency (ewma.go)
	ramp     rampState    // slow start (slowstart.go)
	hashID   uint64       // stable hash of Address (Maglev, rendezvous)
	id       string       // opaque affinity id (affinity.go)
	cookie   string       // Set-Cookie value naming this endpoint (affinity only)
	local    bool         // in the preferred zone (locality.go)
}

// begin counts an attempt on e as in flight; end must follow when the attempt
// ends. RoundTripTry brackets each exchange with them.
func (e *Endpoint) begin() { e.inflight.Add(1) }

// end closes an attempt opened by begin.
func (e *Endpoint) end() { e.inflight.Add(-1) }

// InFlight reports the attempts currently running on the endpoint.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// Balancer picks the endpoint for the next request. Implementations must be
// safe for concurrent use, cheap, and allocation-free: Pick runs per request.
// Pick returns nil when there is nothing to pick.
type Balancer interface {
	Pick(info *PickInfo) *Endpoint
}

// Load-balancing algorithm names (ir.Upstream.Algorithm).
const (
	AlgRoundRobin     = "round-robin"
	AlgRandom         = "random"
	AlgLeastRequest   = "least-request"
	AlgConsistentHash = "consistent-hash"
	AlgEWMA           = "ewma"
)

type algorithm uint8

const (
	algRoundRobin algorithm = iota
	algRandom
	algLeastRequest
	algHash
	algEWMA
)

var algorithms = map[string]algorithm{
	"": algRoundRobin, AlgRoundRobin: algRoundRobin, AlgRandom: algRandom,
	AlgLeastRequest: algLeastRequest, AlgConsistentHash: algHash, AlgEWMA: algEWMA,
}

// balancer is the one Balancer implementation: the algorithm's state plus the
// filters every algorithm shares (availability, avoid list, locality, slow
// start). It is immutable apart from its atomics and the round-robin state;
// a change of the endpoint set (DNS) builds a new one.
type balancer struct {
	up  *Upstream // availability (and its test hook); nil in unit tests
	alg algorithm
	eps []*Endpoint

	equal bool    // all weights equal
	cum   []int64 // cumulative weights for weighted random draws
	total int64

	rr    atomic.Uint64 // lock-free round-robin for equal weights
	wrrMu sync.Mutex
	cur   []int64 // smooth weighted round-robin state

	hash  *hashPolicy // consistent-hash key
	table []uint32    // Maglev lookup table: slot → index into eps

	slowStart int64        // ramp window in ns (0: off)
	rampUntil atomic.Int64 // latest end of any ramp (nanotime)

	locals   []*Endpoint // endpoints in the preferred zone (nil: no locality)
	minLocal int         // percent of locals that must be available

	aff *affinity // cookie affinity (nil: off)
}

// newBalancer builds the balancer for def's algorithm over eps. ok is false
// when the algorithm is unknown (round-robin is used then).
func newBalancer(def *ir.Upstream, up *Upstream, eps []*Endpoint) (b *balancer, ok bool) {
	b = &balancer{up: up, eps: eps, cur: make([]int64, len(eps)), equal: true}
	b.alg, ok = algorithms[def.Algorithm]
	b.cum = make([]int64, len(eps))
	for i, e := range eps {
		if e.hashID == 0 { // not built by an Upstream (unit tests)
			prepareEndpoint(def, e)
		}
		b.total += int64(e.Weight)
		b.cum[i] = b.total
		if e.Weight != eps[0].Weight {
			b.equal = false
		}
	}
	if b.alg == algHash {
		b.hash = newHashPolicy(def.Hash)
		b.table = buildMaglev(eps)
	}
	if def.SlowStartMillis > 0 {
		b.slowStart = def.SlowStartMillis * 1e6
		for _, e := range eps {
			b.extendRamp(e.ramp.from.Load())
		}
	}
	b.initLocality(def.Locality)
	b.initAffinity(def.Affinity)
	return b, ok
}

// prepareEndpoint sets e's fields derived from the definition once, before
// any balancer can see e (endpoints are shared by the balancers DNS builds).
func prepareEndpoint(def *ir.Upstream, e *Endpoint) {
	e.hashID = hashString(e.Address)
	if a := def.Affinity; a != nil && a.Cookie != "" {
		e.id = endpointID(def.Name, e.Address)
		e.cookie = affinityCookie(a, e.id)
	}
	if l := def.Locality; l != nil && l.Zone != "" {
		e.local = e.Labels["zone"] == l.Zone
	}
}

// setEndpoints installs eps with a new balancer.
func (u *Upstream) setEndpoints(eps []*Endpoint) {
	b, _ := newBalancer(&u.def, u, eps)
	u.lb.Store(b)
}

// start readies a fresh upstream before it serves. prev is the upstream of
// the same name it replaces (nil if none): latency estimates and ramps carry
// over by address, endpoints new to the upstream start their slow start, and
// a DNS upstream starts from prev's last answer. Then DNS discovery starts.
func (u *Upstream) start(prev *Upstream) {
	if prev != nil {
		eps := u.Endpoints()
		if d := u.def.DNS; d != nil && len(eps) == 0 && prev.def.DNS != nil && *prev.def.DNS == *d {
			for _, o := range prev.Endpoints() {
				if ep, err := u.newEndpoint(ir.Endpoint{Address: o.Address, Weight: o.Weight}); err == nil {
					eps = append(eps, ep)
				}
			}
		}
		old := make(map[string]*Endpoint, len(eps))
		for _, o := range prev.Endpoints() {
			old[o.Address] = o
		}
		now := nanotime()
		for _, e := range eps {
			if o := old[e.Address]; o != nil {
				e.lat.copyFrom(&o.lat)
				e.ramp.from.Store(o.ramp.from.Load())
			} else if u.def.SlowStartMillis > 0 {
				e.ramp.from.Store(now)
			}
		}
		u.setEndpoints(eps)
	}
	if u.def.DNS != nil {
		u.startDNS()
	}
}

// Pick chooses the endpoint for one attempt: the endpoint named by a valid
// affinity cookie, else the balancer's choice. It returns nil only when the
// upstream has no endpoints; unavailable endpoints are used when nothing else
// is left (panic mode, see balancer.Pick).
func (u *Upstream) Pick(info *PickInfo) *Endpoint {
	b := u.lb.Load()
	if b.aff != nil {
		if e := b.affinityPick(info); e != nil {
			return e
		}
	}
	return b.Pick(info)
}

// available reports e's health, through the upstream's test hook if set.
func (b *balancer) available(e *Endpoint) bool {
	if b.up != nil {
		if h := b.up.availHook.Load(); h != nil {
			return (*h)(e)
		}
	}
	return e.Available()
}

// Pick implements Balancer. Candidates are tried in tiers, each a strictly
// weaker filter than the one before, so an endpoint is only picked against a
// preference when the preference cannot be met:
//
//  1. local zone, available, not avoided (only when locality holds, see locality.go)
//  2. available, not avoided
//  3. available (the avoid list is advisory: retry on the same endpoint)
//  4. not avoided, then anything: panic mode, every endpoint is unavailable
//     and health information is assumed wrong (Envoy's panic threshold at 0%).
func (b *balancer) Pick(info *PickInfo) *Endpoint {
	switch len(b.eps) {
	case 0:
		return nil
	case 1:
		return b.eps[0]
	}
	f := filter{b: b, avoid: info.Avoid, avail: true}
	if b.slowStart > 0 || b.alg == algEWMA {
		f.now = nanotime()
	}
	var key uint64
	keyed := false
	if b.hash != nil {
		key, keyed = b.hash.key(info)
	}
	if b.locals != nil && b.localHealthy() {
		f.local = true
		if e := b.pick(&f, key, keyed); e != nil {
			return e
		}
		f.local = false
	}
	if e := b.pick(&f, key, keyed); e != nil {
		return e
	}
	if len(f.avoid) > 0 {
		f.avoid = nil
		if e := b.pick(&f, key, keyed); e != nil {
			return e
		}
		f.avoid = info.Avoid
	}
	f.avail = false
	if e := b.pick(&f, key, keyed); e != nil {
		return e
	}
	f.avoid = nil
	return b.pick(&f, key, keyed)
}

// pick runs the algorithm over the endpoints f accepts; nil if none.
func (b *balancer) pick(f *filter, key uint64, keyed bool) *Endpoint {
	switch b.alg {
	case algRandom:
		return b.sample(f, true)
	case algLeastRequest, algEWMA:
		return b.p2c(f)
	case algHash:
		if !keyed {
			return b.sample(f, true)
		}
		return b.hashPick(f, key)
	}
	return b.roundRobin(f)
}

// filter says which endpoints the current tier accepts.
type filter struct {
	b     *balancer
	avoid []string
	now   int64 // nanotime when slow start or ewma need a clock, else 0
	local bool  // only endpoints in the preferred zone
	avail bool  // only available endpoints
	skip  *Endpoint
}

func (f *filter) ok(e *Endpoint) bool {
	if e == f.skip || f.local && !e.local {
		return false
	}
	if f.avail {
		up := f.b.available(e)
		if f.b.slowStart > 0 {
			f.b.noteHealth(e, up, f.now)
		}
		if !up {
			return false
		}
	}
	return len(f.avoid) == 0 || !slices.Contains(f.avoid, e.Address)
}

// weight is e's effective weight ×1024, lowered while e is in slow start.
func (f *filter) weight(e *Endpoint, base int32) int64 {
	w := int64(base) << 10
	if f.now != 0 && f.b.slowStart > 0 {
		w = int64(float64(w) * f.b.rampFactor(e, f.now))
	}
	return max(w, 1)
}

// roundRobin is smooth weighted round-robin; equal weights with nothing
// ramping take a lock-free counter whose sequence is the same.
func (b *balancer) roundRobin(f *filter) *Endpoint {
	if b.equal && (b.slowStart == 0 || f.now >= b.rampUntil.Load()) {
		e := b.eps[(b.rr.Add(1)-1)%uint64(len(b.eps))]
		if f.ok(e) {
			return e
		}
	}
	return b.smoothWRR(f)
}

// smoothWRR is nginx's smooth weighted round-robin over the accepted
// endpoints: on each pick every candidate's current value grows by its
// effective weight, the largest wins and is lowered by the candidates' total.
// Weights 5,1,1 give a a b a c a a: spread out, exact over each cycle.
// Endpoint counts are small, so a mutex around an O(n) scan beats anything
// cleverer.
func (b *balancer) smoothWRR(f *filter) *Endpoint {
	b.wrrMu.Lock()
	best, total := -1, int64(0)
	for i, e := range b.eps {
		if !f.ok(e) {
			continue
		}
		w := f.weight(e, e.Weight)
		b.cur[i] += w
		total += w
		if best < 0 || b.cur[i] > b.cur[best] {
			best = i
		}
	}
	if best < 0 {
		b.wrrMu.Unlock()
		return nil
	}
	b.cur[best] -= total
	b.wrrMu.Unlock()
	return b.eps[best]
}

// sampleTries bounds the rejection-sampling draws before a linear scan.
const sampleTries = 8

// sample draws a random accepted endpoint, by weight or uniformly. Draws come
// from the static distribution and are rejected when f refuses the endpoint
// or, in slow start, with probability 1-ramp: O(1) while most endpoints are
// usable, with an exact O(n) scan as the fallback.
func (b *balancer) sample(f *filter, weighted bool) *Endpoint {
	for range sampleTries {
		var e *Endpoint
		if weighted && !b.equal {
			e = b.eps[b.drawWeighted()]
		} else {
			e = b.eps[rand.IntN(len(b.eps))]
		}
		if !f.ok(e) {
			continue
		}
		if f.now == 0 || b.slowStart == 0 || rand.Float64() < b.rampFactor(e, f.now) {
			return e
		}
	}
	return b.scanSample(f, weighted)
}

// drawWeighted returns an index drawn by static weight (binary search over
// the cumulative weights).
func (b *balancer) drawWeighted() int {
	r := rand.Int64N(b.total)
	lo, hi := 0, len(b.cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.cum[m] > r {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// scanSample is sample's exact fallback: one pass to total the effective
// weights of the accepted endpoints, one to find the drawn one.
func (b *balancer) scanSample(f *filter, weighted bool) *Endpoint {
	var total int64
	for _, e := range b.eps {
		if f.ok(e) {
			total += f.weight(e, weightOf(e, weighted))
		}
	}
	if total == 0 {
		return nil
	}
	r := rand.Int64N(total)
	for _, e := range b.eps {
		if f.ok(e) {
			if r -= f.weight(e, weightOf(e, weighted)); r < 0 {
				return e
			}
		}
	}
	return nil // only if availability changed between the passes
}

func weightOf(e *Endpoint, weighted bool) int32 {
	if weighted {
		return e.Weight
	}
	return 1
}

// p2c is the power of two choices: two distinct random candidates, the less
// loaded wins.
//
//   - least-request draws by weight and compares in-flight/weight; a tie goes
//     to the first draw, so an idle upstream's shares follow the weights.
//   - ewma draws uniformly and compares ewma latency × (in-flight+1) / weight.
func (b *balancer) p2c(f *filter) *Endpoint {
	weighted := b.alg == algLeastRequest
	x := b.sample(f, weighted)
	if x == nil {
		return nil
	}
	f.skip = x
	y := b.sample(f, weighted)
	f.skip = nil
	if y == nil {
		return x
	}
	if b.alg == algEWMA {
		if ewmaCost(y, f.now) < ewmaCost(x, f.now) {
			return y
		}
		return x
	}
	// in_y/w_y < in_x/w_x without division.
	if y.inflight.Load()*int64(x.Weight) < x.inflight.Load()*int64(y.Weight) {
		return y
	}
	return x
}

package upstream

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/ir"
)

// Health model. An endpoint is Available when its active checks pass (it
// starts healthy: until a check has failed UnhealthyThreshold times in a row,
// a new endpoint takes traffic, so a config reload never empties an
// upstream) and outlier detection has not ejected it. Both halves are kept
// under the upstream's health mutex; the combined answer is mirrored in one
// atomic so Available costs a single load on the pick path.

// endpointHealth is one endpoint's health state.
type endpointHealth struct {
	down atomic.Bool // mirror of !(healthy && !ejected), read by Available

	// Passive counters, touched by Report without a lock.
	n5xx, nGateway, nTimeout atomic.Int32

	// Guarded by upstreamHealth.mu.
	sick         bool // active checks say unhealthy
	okRun        int32
	failRun      int32
	lastErr      string
	lastCheck    time.Time
	ejected      bool
	ejectedUntil time.Time
	ejections    int // total, for /debug
	mult         int // ejection-time multiplier (decays while the endpoint behaves)
	returnedAt   time.Time
	timer        *time.Timer
}

// upstreamHealth is an upstream's shared health state.
type upstreamHealth struct {
	mu       sync.Mutex
	nEjected int
	passive  *ir.PassiveCheck // with defaults applied; nil when off
	active   *activeChecker   // nil when off
	stopped  bool
}

// Passive defaults (zero in the IR means "not set").
const (
	defaultBaseEjection      = 30 * time.Second
	defaultMaxEjection       = 300 * time.Second
	defaultMaxEjectedPercent = 10
)

// initHealth sets up outlier detection and the active checker (not started).
func (u *Upstream) initHealth() {
	hc := u.def.HealthCheck
	if hc == nil {
		return
	}
	if p := hc.Passive; p != nil && (p.Consecutive5xx > 0 || p.ConsecutiveGatewayErrors > 0 || p.ConsecutiveTimeouts > 0) {
		q := *p
		if q.BaseEjectionMillis <= 0 {
			q.BaseEjectionMillis = defaultBaseEjection.Milliseconds()
		}
		if q.MaxEjectionMillis <= 0 {
			q.MaxEjectionMillis = max(defaultMaxEjection.Milliseconds(), q.BaseEjectionMillis)
		}
		if q.MaxEjectedPercent <= 0 {
			q.MaxEjectedPercent = defaultMaxEjectedPercent
		}
		u.hs.passive = &q
	}
	if hc.Active != nil {
		u.hs.active = newActiveChecker(u, *hc.Active)
	}
}

// startHealth starts active checks (Registry.Build, once per fresh upstream).
func (u *Upstream) startHealth() {
	if a := u.hs.active; a != nil {
		a.start()
	}
}

// endpointsChanged makes active checks follow a new endpoint set (DNS).
func (u *Upstream) endpointsChanged() {
	if a := u.hs.active; a != nil {
		a.sync()
	}
}

// stopHealth stops active checks and pending ejection timers (retire).
func (u *Upstream) stopHealth() {
	u.hs.mu.Lock()
	u.hs.stopped = true
	for _, e := range u.Endpoints() {
		if e.hs.timer != nil {
			e.hs.timer.Stop()
		}
	}
	u.hs.mu.Unlock()
	if a := u.hs.active; a != nil {
		a.stop()
	}
}

// Available reports whether the endpoint may receive traffic: its active
// health checks pass (endpoints start healthy) and outlier detection has
// not ejected it. It is one atomic load; balancers call it on every pick.
func (e *Endpoint) Available() bool { return !e.hs.down.Load() }

// Report records the outcome of an attempt on the endpoint: it feeds
// latency-aware balancing and passive outlier detection. Errors are counted
// as the status the client gets (Timeout as 504, ConnectFailed, Reset and
// Protocol as 502); NoEndpoints and Overloaded never reached the endpoint
// and are ignored. Each counter is reset by any result it does not count,
// so a success resets them all.
func (e *Endpoint) Report(r Result) {
	e.observeLatency(r.Latency, r.Kind != 0 || r.Status >= 500)
	if e.up == nil {
		return
	}
	p := e.up.hs.passive
	if p == nil {
		return
	}
	status := r.Status
	switch r.Kind {
	case 0:
	case Timeout:
		status = 504
	case ConnectFailed, Reset, Protocol:
		status = 502
	default:
		return
	}
	h := &e.hs
	trip := false
	count := func(c *atomic.Int32, hit bool, limit int32) {
		switch {
		case !hit:
			if c.Load() != 0 {
				c.Store(0)
			}
		case limit > 0 && c.Add(1) >= limit:
			trip = true
		}
	}
	count(&h.n5xx, status >= 500, p.Consecutive5xx)
	count(&h.nGateway, status == 502 || status == 503 || status == 504, p.ConsecutiveGatewayErrors)
	count(&h.nTimeout, r.Kind == Timeout, p.ConsecutiveTimeouts)
	if trip {
		e.up.eject(e)
	}
}

// maxEjectable is how many of n endpoints may be ejected at once: pct of n
// rounded down, but at least one when there are two or more endpoints (so
// the 10% default still protects small upstreams). A lone endpoint is only
// ejectable with pct 100: ejecting it just turns 502s into 503s.
func maxEjectable(n int, pct int32) int {
	k := n * int(pct) / 100
	if k == 0 && n >= 2 {
		k = 1
	}
	return k
}

// eject takes e out of rotation for BaseEjection × its ejection multiplier
// (capped at MaxEjection), unless the max-ejected cap is reached.
func (u *Upstream) eject(e *Endpoint) {
	p := u.hs.passive
	base := time.Duration(p.BaseEjectionMillis) * time.Millisecond
	limit := time.Duration(p.MaxEjectionMillis) * time.Millisecond
	u.hs.mu.Lock()
	h := &e.hs
	if u.hs.stopped || h.ejected || u.hs.nEjected >= maxEjectable(len(u.Endpoints()), p.MaxEjectedPercent) {
		u.hs.mu.Unlock()
		return
	}
	now := time.Now()
	if h.mult > 0 && !h.returnedAt.IsZero() {
		// One step of forgiveness per MaxEjection spent back in rotation.
		h.mult = max(0, h.mult-int(now.Sub(h.returnedAt)/limit))
	}
	h.mult++
	d := min(base*time.Duration(h.mult), limit)
	h.ejected, h.ejectedUntil = true, now.Add(d)
	h.ejections++
	u.hs.nEjected++
	h.n5xx.Store(0)
	h.nGateway.Store(0)
	h.nTimeout.Store(0)
	h.timer = time.AfterFunc(d, func() { u.unEject(e) })
	n := h.ejections
	changed := u.syncDown(e)
	u.hs.mu.Unlock()
	u.opts.Logger.Warn("endpoint ejected by outlier detection", "upstream", u.def.Name,
		"endpoint", e.Address, "for", d, "ejections", n)
	u.notify(e, changed)
}

// unEject returns e to rotation when its ejection time is over.
func (u *Upstream) unEject(e *Endpoint) {
	u.hs.mu.Lock()
	h := &e.hs
	if !h.ejected || u.hs.stopped {
		u.hs.mu.Unlock()
		return
	}
	h.ejected, h.ejectedUntil = false, time.Time{}
	h.returnedAt = time.Now()
	u.hs.nEjected--
	changed := u.syncDown(e)
	u.hs.mu.Unlock()
	u.notify(e, changed)
}

// recordCheck applies one active check result and the thresholds.
func (u *Upstream) recordCheck(e *Endpoint, err error, healthyAfter, unhealthyAfter int32) {
	u.hs.mu.Lock()
	if u.hs.stopped {
		u.hs.mu.Unlock()
		return
	}
	h := &e.hs
	h.lastCheck = time.Now()
	if err == nil {
		h.lastErr = ""
		h.failRun = 0
		h.okRun++
		if h.sick && h.okRun >= healthyAfter {
			h.sick = false
		}
	} else {
		h.lastErr = err.Error()
		h.okRun = 0
		h.failRun++
		if !h.sick && h.failRun >= unhealthyAfter {
			h.sick = true
		}
	}
	healthy := !h.sick
	changed := u.syncDown(e)
	u.hs.mu.Unlock()
	if changed {
		u.opts.Logger.Info("endpoint health changed", "upstream", u.def.Name,
			"endpoint", e.Address, "healthy", healthy, "error", err)
	}
	u.notify(e, changed)
}

// syncDown refreshes the atomic mirror; it reports whether it flipped.
// Called with hs.mu held.
func (u *Upstream) syncDown(e *Endpoint) bool {
	down := e.hs.sick || e.hs.ejected
	return e.hs.down.Swap(down) != down
}

func (u *Upstream) notify(e *Endpoint, changed bool) {
	if changed && u.opts.OnHealthChange != nil {
		u.opts.OnHealthChange(u.def.Name, e.Address, e.Available())
	}
}

// UpstreamHealth is the health of one upstream's endpoints (for /debug).
type UpstreamHealth struct {
	Name      string           `json:"name"`
	Endpoints []EndpointHealth `json:"endpoints"`
}

// EndpointHealth is one endpoint's health: Healthy is the active-check
// verdict, Available also accounts for outlier ejection.
type EndpointHealth struct {
	Address   string `json:"address"`
	Healthy   bool   `json:"healthy"`
	Available bool   `json:"available"`
	// EjectedUntil is set while outlier detection keeps the endpoint out.
	EjectedUntil time.Time `json:"ejectedUntil,omitzero"`
	// Ejections counts outlier ejections since the upstream was built.
	Ejections int `json:"ejections"`
	// LastCheck and LastCheckError describe the latest active check.
	LastCheck      time.Time `json:"lastCheck,omitzero"`
	LastCheckError string    `json:"lastCheckError,omitempty"`
}

// Health returns the health of the upstream's endpoints.
func (u *Upstream) Health() UpstreamHealth {
	eps := u.Endpoints()
	out := UpstreamHealth{Name: u.def.Name, Endpoints: make([]EndpointHealth, len(eps))}
	u.hs.mu.Lock()
	for i, e := range eps {
		h := &e.hs
		out.Endpoints[i] = EndpointHealth{
			Address: e.Address, Healthy: !h.sick, Available: !h.sick && !h.ejected,
			EjectedUntil: h.ejectedUntil, Ejections: h.ejections,
			LastCheck: h.lastCheck, LastCheckError: h.lastErr,
		}
	}
	u.hs.mu.Unlock()
	return out
}

// Health returns the health of the newest live upstream of each name,
// sorted by name (for /debug).
func (r *Registry) Health() []UpstreamHealth {
	r.mu.Lock()
	ups := make([]*Upstream, 0, len(r.byName))
	for _, u := range r.byName {
		ups = append(ups, u)
	}
	r.mu.Unlock()
	sort.Slice(ups, func(i, j int) bool { return ups[i].def.Name < ups[j].def.Name })
	out := make([]UpstreamHealth, len(ups))
	for i, u := range ups {
		out[i] = u.Health()
	}
	return out
}

// expectedStatus reports whether code is healthy for an HTTP check.
func expectedStatus(code int, want []int32) bool {
	if len(want) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(want, int32(code))
}

// Package concurrencylimit is the concurrency-limit plugin: it caps how many requests
// per key (route by default, or consumer, client IP, request header) are in flight at
// once and answers 503 to the rest. See README.md for the user manual.
package concurrencylimit

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Name is the plugin's configuration name.
const Name = "concurrency-limit"

// Config is the plugin's configuration.
type Config struct {
	// Max is the most requests one key may have in flight (> 0).
	Max int64 `json:"max"`
	// Key is what requests are counted by: route (default), consumer, ip or header.
	Key string `json:"key,omitempty"`
	// Header names the request header whose value is the key when Key is "header".
	Header string `json:"header,omitempty"`

	kind pluginutil.KeyKind
}

// Validate checks the config and fills defaults. Errors name the field.
func (c *Config) Validate() error {
	if c.Max <= 0 || c.Max > 1<<30 {
		return &plugin.FieldError{Field: "max", Message: "must be between 1 and 1073741824"}
	}
	k, ok := pluginutil.ParseKeyKind(c.Key, pluginutil.KeyRoute)
	if !ok {
		return &plugin.FieldError{Field: "key", Message: "must be " + pluginutil.KeyNames}
	}
	c.kind = k
	if k == pluginutil.KeyHeader && !pluginutil.ValidHeaderName(c.Header) {
		return &plugin.FieldError{Field: "header", Message: "a valid header name is required when key is header"}
	}
	if k != pluginutil.KeyHeader && c.Header != "" {
		return &plugin.FieldError{Field: "header", Message: "only allowed when key is header"}
	}
	return nil
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, env *plugin.Env) (any, error) { return New(cfg.(*Config), env), nil },
	})
}

// ctxKey carries the request's slot from Access to Log.
const ctxKey = "concurrency-limit.slot"

const registryName = "concurrency-limit/counters"

// Plugin is one configured concurrency-limit instance.
type Plugin struct {
	max    int64
	src    pluginutil.KeySource
	ctrs   *Counters
	reg    *pluginutil.Registry
	regKey string
	closed sync.Once
}

// New builds an instance. Counters are shared through env.Shared by every instance
// with the same key settings, so requests still in flight on a retired snapshot count
// against the new one (the limit itself may change across reloads).
func New(cfg *Config, env *plugin.Env) *Plugin {
	p := &Plugin{max: cfg.Max, src: pluginutil.NewKeySource(cfg.kind, cfg.Header),
		reg: pluginutil.SharedRegistry(env, registryName)}
	p.regKey = fmt.Sprintf("%s/%s", cfg.kind, p.src.Header)
	p.ctrs = p.reg.Acquire(p.regKey, func() any { return NewCounters() }).(*Counters)
	return p
}

// Access takes a slot or answers 503 concurrency_limited.
func (p *Plugin) Access(c *plugin.Context) error {
	s := p.ctrs.Acquire(p.src.Of(c), p.max)
	if s == nil {
		r := plugin.JSONError(http.StatusServiceUnavailable, "concurrency_limited", "too many requests in flight, retry later")
		r.Header["Retry-After"] = []string{"1"}
		return r
	}
	c.Set(ctxKey, s)
	return nil
}

// Log gives the slot back. It is idempotent, and any instance's Log releases the slot
// taken by any other (the slot travels in the context).
func (p *Plugin) Log(c *plugin.Context) { Release(c) }

// Release gives back the slot c holds, if any. The data plane may call it directly if
// a request ends without running the log phase.
func Release(c *plugin.Context) {
	if v, ok := c.Get(ctxKey); ok {
		if s, ok := v.(*Slot); ok && s != nil {
			s.n.Add(-1)
			c.Set(ctxKey, nil)
		}
	}
}

// Close releases the instance's hold on the shared counters.
func (p *Plugin) Close() error {
	p.closed.Do(func() { p.reg.Release(p.regKey) })
	return nil
}

// Counters counts in-flight requests per key in a striped map. Keys with nothing in
// flight are swept out when a shard grows past a threshold, so memory follows the
// number of keys with requests in flight.
type Counters struct {
	shards [numShards]shard
}

const (
	numShards  = 32
	sweepAbove = 256 // keys per shard before idle ones are swept
)

type shard struct {
	mu    sync.RWMutex
	m     map[pluginutil.Key]*Slot
	limit int
	_     [32]byte
}

// Slot is one key's in-flight count.
type Slot struct{ n atomic.Int64 }

// NewCounters returns empty counters.
func NewCounters() *Counters {
	cs := &Counters{}
	for i := range cs.shards {
		cs.shards[i].m = map[pluginutil.Key]*Slot{}
		cs.shards[i].limit = sweepAbove
	}
	return cs
}

func (cs *Counters) shardOf(k pluginutil.Key) *shard {
	h := uint32(2166136261)
	for _, s := range [...]string{k.Route, k.ID} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint32(s[i])) * 16777619
		}
	}
	return &cs.shards[(h^uint32(k.Kind))%numShards]
}

// Acquire counts one more request for k, or returns nil when max are in flight. The
// count is taken under the shard's read lock, so a sweep (write lock) never removes a
// slot between lookup and increment.
func (cs *Counters) Acquire(k pluginutil.Key, max int64) *Slot {
	s := cs.shardOf(k)
	s.mu.RLock()
	slot := s.m[k]
	if slot != nil {
		ok := take(slot, max)
		s.mu.RUnlock()
		if !ok {
			return nil
		}
		return slot
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot = s.m[k]; slot == nil {
		if len(s.m) >= s.limit {
			s.sweep()
		}
		slot = &Slot{}
		s.m[k.Clone()] = slot
	}
	if !take(slot, max) {
		return nil
	}
	return slot
}

func take(s *Slot, max int64) bool {
	for {
		n := s.n.Load()
		if n >= max {
			return false
		}
		if s.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// sweep drops idle keys and adapts the threshold to the busy ones. Called locked.
func (s *shard) sweep() {
	for k, v := range s.m {
		if v.n.Load() == 0 {
			delete(s.m, k)
		}
	}
	s.limit = max(sweepAbove, 2*len(s.m))
}

// InFlight reports k's count (tests, metrics).
func (cs *Counters) InFlight(k pluginutil.Key) int64 {
	s := cs.shardOf(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if v := s.m[k]; v != nil {
		return v.n.Load()
	}
	return 0
}

// Len reports how many keys are stored.
func (cs *Counters) Len() int {
	n := 0
	for i := range cs.shards {
		s := &cs.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

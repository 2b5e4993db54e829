package pluginutil

import (
	"sync"
	"time"

	"portico.dev/portico/internal/plugin"
)

// Registry hands out process-wide state by key with reference counts, so state shared
// by identical configurations survives a reload (the new snapshot acquires before the
// old one releases) and state nobody uses any more is dropped after a grace period.
type Registry struct {
	mu    sync.Mutex
	items map[string]*regItem
	grace time.Duration
	now   func() time.Time
}

type regItem struct {
	v        any
	refs     int
	unusedAt time.Time
}

// SharedRegistry returns the registry stored in env.Shared under name, or a private one
// when env has no Shared (tests, tools).
func SharedRegistry(env *plugin.Env, name string) *Registry {
	if env == nil || env.Shared == nil {
		return NewRegistry()
	}
	return env.Shared.GetOrCreate(name, func() any { return NewRegistry() }).(*Registry)
}

// NewRegistry returns an empty registry with a one-minute grace period.
func NewRegistry() *Registry {
	return &Registry{items: map[string]*regItem{}, grace: time.Minute, now: time.Now}
}

// Acquire returns the value for key, creating it with create if needed, and counts a
// reference. Each Acquire must be paired with one Release.
func (r *Registry) Acquire(key string, create func() any) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep()
	it, ok := r.items[key]
	if !ok {
		it = &regItem{v: create()}
		r.items[key] = it
	}
	it.refs++
	return it.v
}

// Release drops a reference taken by Acquire. The value stays available for the grace
// period, so a rebuild that happens just after a release still finds it.
func (r *Registry) Release(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if it, ok := r.items[key]; ok && it.refs > 0 {
		it.refs--
		if it.refs == 0 {
			it.unusedAt = r.now()
		}
	}
}

// Len reports how many values the registry holds (tests).
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

func (r *Registry) sweep() {
	now := r.now()
	for k, it := range r.items {
		if it.refs == 0 && now.Sub(it.unusedAt) > r.grace {
			delete(r.items, k)
		}
	}
}

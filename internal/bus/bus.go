// Package bus is a typed publish/subscribe value holder that connects runners (provider,
// translator, data plane). Publishing a value equal to the last one is ignored, so a
// source that re-reads unchanged input causes no rebuild downstream.
package bus

import (
	"context"
	"sync"
)

// Topic holds the latest value of type T and wakes subscribers when it changes.
type Topic[T any] struct {
	mu      sync.Mutex
	equal   func(a, b T) bool
	value   T
	has     bool
	version uint64
	changed chan struct{} // closed and replaced on every change
}

// New returns a topic that treats values as equal when equal says so.
func New[T any](equal func(a, b T) bool) *Topic[T] {
	return &Topic[T]{equal: equal, changed: make(chan struct{})}
}

// Publish stores v unless it equals the current value; it reports whether it stored.
func (t *Topic[T]) Publish(v T) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.has && t.equal(t.value, v) {
		return false
	}
	t.value, t.has = v, true
	t.version++
	close(t.changed)
	t.changed = make(chan struct{})
	return true
}

// Latest returns the current value and whether there is one.
func (t *Topic[T]) Latest() (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.value, t.has
}

// Subscribe calls fn with the current value (if any) and then with every new value, in
// order, until ctx ends. Values published while fn runs coalesce: fn sees the newest.
func (t *Topic[T]) Subscribe(ctx context.Context, fn func(T)) {
	var seen uint64
	for {
		t.mu.Lock()
		v, has, version, changed := t.value, t.has, t.version, t.changed
		t.mu.Unlock()
		if has && version != seen {
			seen = version
			fn(v)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

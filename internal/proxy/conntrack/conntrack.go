// Package conntrack keeps the set of connections a server still owns outside net/http's
// bookkeeping (hijacked WebSocket connections, L4 streams), so that shutdown can wait for
// them to finish and then close the rest.
package conntrack

import (
	"context"
	"sync"
	"time"
)

// Set is a set of open connections. The zero value is ready to use.
type Set[T comparable] struct {
	mu     sync.Mutex
	m      map[T]struct{}
	sealed bool
}

// Add registers c. It returns false once the set is sealed: the caller then owns c and
// should close it.
func (s *Set[T]) Add(c T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealed {
		return false
	}
	if s.m == nil {
		s.m = map[T]struct{}{}
	}
	s.m[c] = struct{}{}
	return true
}

// Remove forgets c.
func (s *Set[T]) Remove(c T) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// Len is the number of registered connections.
func (s *Set[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Seal refuses further Adds (the server stopped accepting).
func (s *Set[T]) Seal() {
	s.mu.Lock()
	s.sealed = true
	s.mu.Unlock()
}

// WaitEmpty waits until no connection is registered (true) or ctx ends (false).
func (s *Set[T]) WaitEmpty(ctx context.Context) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for s.Len() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// CloseAll calls closeFn for every registered connection (under the set's lock, so
// closeFn must not call back into the set).
func (s *Set[T]) CloseAll(closeFn func(T)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.m {
		closeFn(c)
	}
}

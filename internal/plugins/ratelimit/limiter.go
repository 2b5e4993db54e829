package ratelimit

import (
	"time"

	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Limiter is a rate-limit backend: it counts requests per key against one Policy.
// The local token bucket (Local) is the only backend today; a cluster-wide backend
// (Redis) implements the same interface and is selected by configuration.
// Implementations must be safe for concurrent use.
type Limiter interface {
	// Take counts one request for key and reports whether it is allowed.
	Take(key pluginutil.Key) Decision
	// Peek reports the key's state without counting a request (for response headers).
	Peek(key pluginutil.Key) Decision
}

// Decision is the outcome of Take or Peek.
type Decision struct {
	Allowed bool
	// Remaining is how many more requests the key may make right now.
	Remaining int64
	// Reset is how long until the key's quota is fully restored.
	Reset time.Duration
	// RetryAfter is, when not Allowed, how long until one request fits again.
	RetryAfter time.Duration
}

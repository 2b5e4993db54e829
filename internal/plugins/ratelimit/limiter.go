package ratelimit

import (
	"time"

	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Limiter is a rate-limit backend: it counts requests per key against one Policy.
// Backends are the local token bucket (Local) and the cluster-wide sliding window in
// Redis (Redis, with its fallback); configuration selects one.
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
	// Unavailable, with Allowed false, means the backend could not decide (Redis
	// unreachable with fallback deny): the plugin answers 503 instead of 429.
	Unavailable bool
}

package ratelimit

import (
	"math"
	"net"
	"time"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Config is the rate-limit plugin's configuration.
type Config struct {
	// Requests is how many requests a key may make per Window (> 0).
	Requests int64 `json:"requests"`
	// Window is the period Requests refers to (Go duration, at least 1s).
	Window pluginutil.Duration `json:"window"`
	// Key is what requests are counted by: consumer, ip (default), header or route.
	Key string `json:"key,omitempty"`
	// Header names the request header whose value is the key when Key is "header".
	Header string `json:"header,omitempty"`
	// Burst is the bucket size: how many requests may arrive at once after a quiet
	// period. 0 means Requests.
	Burst int64 `json:"burst,omitempty"`
	// Policy is the backend: local (default, a token bucket per process) or redis (a
	// sliding window shared by every gateway using the same Redis).
	Policy string `json:"policy,omitempty"`
	// Redis is where the redis policy keeps its counters (only with policy redis).
	Redis *RedisConfig `json:"redis,omitempty"`
	// Fallback is what the redis policy does while Redis is unreachable: local
	// (default: limit in-process with the same numbers), allow or deny (503).
	Fallback string `json:"fallback,omitempty"`

	kind     pluginutil.KeyKind
	backend  string
	fallback string
}

// RedisConfig locates the Redis server of the redis policy.
type RedisConfig struct {
	// Address is host:port (default 127.0.0.1:6379).
	Address string `json:"address,omitempty"`
	// Password authenticates to Redis (optional).
	Password string `json:"password,omitempty"`
	// DB is the logical database number (default 0).
	DB int `json:"db,omitempty"`
	// Prefix starts every key the plugin writes (default "portico:rl:").
	Prefix string `json:"prefix,omitempty"`
	// Timeout bounds each Redis round trip (default 50ms, between 1ms and 5s).
	Timeout pluginutil.Duration `json:"timeout,omitempty"`
}

// Policy and fallback names.
const (
	policyLocal   = "local"
	policyRedis   = "redis"
	fallbackLocal = "local"
	fallbackAllow = "allow"
	fallbackDeny  = "deny"
)

// Redis defaults.
const (
	defaultRedisAddress = "127.0.0.1:6379"
	defaultRedisPrefix  = "portico:rl:"
	defaultRedisTimeout = 50 * time.Millisecond
)

const (
	maxRequests = 1 << 30
	maxWindow   = 31 * 24 * time.Hour
)

// Validate checks the config and fills defaults. Errors name the field.
func (c *Config) Validate() error {
	if c.Requests <= 0 || c.Requests > maxRequests {
		return &plugin.FieldError{Field: "requests", Message: "must be between 1 and 1073741824"}
	}
	w := time.Duration(c.Window)
	if w < time.Second || w > maxWindow {
		return &plugin.FieldError{Field: "window", Message: "must be a duration between 1s and 744h"}
	}
	k, ok := pluginutil.ParseKeyKind(c.Key, pluginutil.KeyIP)
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
	if c.Burst < 0 || c.Burst > maxRequests {
		return &plugin.FieldError{Field: "burst", Message: "must be between 1 and 1073741824 (or omitted)"}
	}
	// The bucket depth in nanoseconds must fit an int64 with room to spare.
	if float64(w)/float64(c.Requests)*float64(c.capacity()) > math.MaxInt64/4 {
		return &plugin.FieldError{Field: "burst", Message: "burst × window / requests is too large"}
	}
	return c.validateBackend()
}

// validateBackend checks policy, redis and fallback, filling defaults.
func (c *Config) validateBackend() error {
	switch c.Policy {
	case "", policyLocal:
		c.backend = policyLocal
		if c.Redis != nil {
			return &plugin.FieldError{Field: "redis", Message: "only allowed when policy is redis"}
		}
		if c.Fallback != "" {
			return &plugin.FieldError{Field: "fallback", Message: "only allowed when policy is redis"}
		}
		return nil
	case policyRedis:
		c.backend = policyRedis
	default:
		return &plugin.FieldError{Field: "policy", Message: "must be local or redis"}
	}
	if c.Burst > 0 {
		return &plugin.FieldError{Field: "burst", Message: "only allowed when policy is local (the redis window has no separate burst)"}
	}
	switch c.Fallback {
	case "":
		c.fallback = fallbackLocal
	case fallbackLocal, fallbackAllow, fallbackDeny:
		c.fallback = c.Fallback
	default:
		return &plugin.FieldError{Field: "fallback", Message: "must be local, allow or deny"}
	}
	if c.Redis == nil {
		c.Redis = &RedisConfig{}
	}
	r := c.Redis
	if r.Address == "" {
		r.Address = defaultRedisAddress
	}
	if host, port, err := net.SplitHostPort(r.Address); err != nil || host == "" || port == "" {
		return &plugin.FieldError{Field: "redis.address", Message: "must be host:port"}
	}
	if r.DB < 0 || r.DB > 1<<20 {
		return &plugin.FieldError{Field: "redis.db", Message: "must be a database number ≥ 0"}
	}
	if r.Prefix == "" {
		r.Prefix = defaultRedisPrefix
	}
	if r.Timeout == 0 {
		r.Timeout = pluginutil.Duration(defaultRedisTimeout)
	}
	if t := time.Duration(r.Timeout); t < time.Millisecond || t > 5*time.Second {
		return &plugin.FieldError{Field: "redis.timeout", Message: "must be a duration between 1ms and 5s"}
	}
	return nil
}

// capacity is the bucket size.
func (c *Config) capacity() int64 {
	if c.Burst > 0 {
		return c.Burst
	}
	return c.Requests
}

// Policy is a validated limit, as backends see it.
type Policy struct {
	// Requests per Window is the refill rate.
	Requests int64
	Window   time.Duration
	// Burst is the bucket size (≥ 1).
	Burst int64
}

func (c *Config) policy() Policy {
	return Policy{Requests: c.Requests, Window: time.Duration(c.Window), Burst: c.capacity()}
}

package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// fallback decides while Redis is unreachable.
type fallback struct {
	mode  string
	local *Local // mode local: a token bucket with the same numbers (burst = requests)
	limit int64
}

func newFallback(mode string, pol Policy) fallback {
	f := fallback{mode: mode, limit: pol.Requests}
	if mode == fallbackLocal {
		f.local = NewLocal(Policy{Requests: pol.Requests, Window: pol.Window, Burst: pol.Requests}, 0)
	}
	return f
}

func (f *fallback) decide(k pluginutil.Key, peek bool) Decision {
	switch f.mode {
	case fallbackAllow:
		return Decision{Allowed: true, Remaining: f.limit}
	case fallbackDeny:
		if peek {
			return Decision{Allowed: true}
		}
		return Decision{Unavailable: true, RetryAfter: time.Second}
	}
	if peek {
		return f.local.Peek(k)
	}
	return f.local.Take(k)
}

// Circuit settings: after failThreshold consecutive failures the circuit opens and
// requests go straight to the fallback; a background probe pings Redis every
// probeInterval and closes the circuit on the first success.
const (
	failThreshold = 3
	probeInterval = 250 * time.Millisecond
)

// redisConn is one Redis client with its circuit, shared (through env.Shared) by every
// limiter of every snapshot that uses the same address, db and password.
type redisConn struct {
	client  *redis.Client
	timeout time.Duration
	log     *slog.Logger
	fails   atomic.Int32
	open    atomic.Bool
	// Counters (tests, debugging).
	opened, closed atomic.Int64
}

// sharedRedisConn returns the process-wide connection for cfg (a private one when env
// has no Shared). The password is part of the key only as a hash.
func sharedRedisConn(cfg *RedisConfig, env *plugin.Env) *redisConn {
	sum := sha256.Sum256([]byte(cfg.Password))
	key := "rate-limit/redis/" + cfg.Address + "/" + strconv.Itoa(cfg.DB) + "/" + hex.EncodeToString(sum[:8])
	create := func() any { return newRedisConn(cfg, env) }
	if env == nil || env.Shared == nil {
		return create().(*redisConn)
	}
	return env.Shared.GetOrCreate(key, create).(*redisConn)
}

func newRedisConn(cfg *RedisConfig, env *plugin.Env) *redisConn {
	t := time.Duration(cfg.Timeout)
	log := slog.Default()
	if env != nil && env.Logger != nil {
		log = env.Logger
	}
	return &redisConn{
		client: redis.NewClient(&redis.Options{
			Addr:                  cfg.Address,
			Password:              cfg.Password,
			DB:                    cfg.DB,
			Protocol:              2,
			DialTimeout:           t,
			ReadTimeout:           t,
			WriteTimeout:          t,
			PoolTimeout:           t,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1, // a retry would double the wait; the fallback answers instead
			DialerRetries:         1,  // likewise for dialing
			DisableIdentity:       true,
		}),
		timeout: t,
		log:     log.With("plugin", Name, "redis", cfg.Address),
	}
}

// usable reports whether requests should try Redis (the circuit is closed).
func (c *redisConn) usable() bool { return !c.open.Load() }

func (c *redisConn) succeeded() {
	if c.fails.Load() != 0 {
		c.fails.Store(0)
	}
}

// failed counts a failure; the one that reaches the threshold opens the circuit and
// starts the probe.
func (c *redisConn) failed(err error) {
	if c.fails.Add(1) < failThreshold || !c.open.CompareAndSwap(false, true) {
		return
	}
	c.opened.Add(1)
	c.log.Warn("redis unreachable, rate limiting uses the fallback", "error", err)
	go c.probe()
}

// probe pings Redis until it answers, then closes the circuit.
func (c *redisConn) probe() {
	for {
		time.Sleep(probeInterval)
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		err := c.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			c.fails.Store(0)
			c.open.Store(false)
			c.closed.Add(1)
			c.log.Info("redis reachable again, rate limiting uses redis")
			return
		}
	}
}

// Package ratelimit is the rate-limit plugin: a token bucket per key (consumer, client
// IP, request header or route) in each process, or a sliding window shared through
// Redis, answering 429 once a key's quota is used up and
// advertising the limit with the RateLimit header fields of
// draft-ietf-httpapi-ratelimit-headers-06. See README.md for the user manual.
package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Name is the plugin's configuration name.
const Name = "rate-limit"

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, env *plugin.Env) (any, error) { return New(cfg.(*Config), env), nil },
	})
}

// Header field names, in canonical form so they are written without canonicalising.
const (
	hLimit      = "Ratelimit-Limit"
	hRemaining  = "Ratelimit-Remaining"
	hReset      = "Ratelimit-Reset"
	hPolicy     = "Ratelimit-Policy"
	hRetryAfter = "Retry-After"
)

// ctxKey carries the access-phase Decision to the response-headers phase.
const ctxKey = "rate-limit.decision"

// registryName is the key of the limiter registry in plugin.Env.Shared.
const registryName = "rate-limit/limiters"

// Plugin is one configured rate-limit instance.
type Plugin struct {
	src    pluginutil.KeySource
	lim    Limiter
	reg    *pluginutil.Registry
	regKey string
	limit  []string
	policy []string
	closed sync.Once
}

// New builds an instance. Its limiter is shared, through env.Shared, with every
// instance of the same configuration, so counters survive reloads that keep it.
// Counters are per route: the route name is part of every key.
func New(cfg *Config, env *plugin.Env) *Plugin {
	pol := cfg.policy()
	p := &Plugin{
		src:   pluginutil.NewKeySource(cfg.kind, cfg.Header),
		reg:   pluginutil.SharedRegistry(env, registryName),
		limit: []string{strconv.FormatInt(pol.Burst, 10)},
	}
	// Instances share a limiter only when policy and key (header name included) agree.
	p.regKey = fmt.Sprintf("local/%d/%d/%d/%s/%s", pol.Requests, pol.Window, pol.Burst, cfg.kind, p.src.Header)
	create := func() any { return NewLocal(pol, 0) }
	if cfg.backend == policyRedis {
		conn := sharedRedisConn(cfg.Redis, env)
		// The connection is identified by pointer: same address, db and password.
		p.regKey = fmt.Sprintf("redis/%p/%q/%d/%s/%d/%d/%s/%s", conn, cfg.Redis.Prefix, cfg.Redis.Timeout,
			cfg.fallback, pol.Requests, pol.Window, cfg.kind, p.src.Header)
		create = func() any { return newRedis(cfg, conn) }
	}
	p.lim = p.reg.Acquire(p.regKey, create).(Limiter)
	policy := strconv.FormatInt(pol.Requests, 10) + ";w=" + strconv.FormatInt(ceilSeconds(pol.Window), 10)
	if cfg.Burst > 0 {
		policy += ";burst=" + strconv.FormatInt(pol.Burst, 10)
	}
	p.policy = []string{policy}
	return p
}

var decisions = sync.Pool{New: func() any { return new(Decision) }}

// Access counts the request; an empty bucket answers 429 with Retry-After.
func (p *Plugin) Access(c *plugin.Context) error {
	d := p.lim.Take(p.src.Of(c))
	if d.Unavailable {
		r := plugin.JSONError(http.StatusServiceUnavailable, "rate_limit_unavailable", "rate limit backend unavailable, retry later")
		r.Header[hRetryAfter] = []string{"1"}
		return r
	}
	if !d.Allowed {
		r := plugin.JSONError(http.StatusTooManyRequests, "rate_limited", "rate limit exceeded, retry later")
		p.writeHeaders(r.Header, &d)
		r.Header[hRetryAfter] = []string{strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10)}
		return r
	}
	dp := decisions.Get().(*Decision)
	*dp = d
	c.Set(ctxKey, dp)
	return nil
}

// ResponseHeaders adds the RateLimit fields with the numbers of the access phase.
func (p *Plugin) ResponseHeaders(c *plugin.Context) error {
	v, _ := c.Get(ctxKey)
	dp, ok := v.(*Decision)
	if !ok || dp == nil {
		return nil
	}
	c.Set(ctxKey, nil)
	if c.Header != nil {
		p.writeHeaders(c.Header, dp)
	}
	decisions.Put(dp)
	return nil
}

func (p *Plugin) writeHeaders(h http.Header, d *Decision) {
	h[hLimit] = p.limit
	h[hPolicy] = p.policy
	h[hRemaining] = number(d.Remaining)
	h[hReset] = number(ceilSeconds(d.Reset))
}

// Close releases the instance's hold on its shared limiter.
func (p *Plugin) Close() error {
	p.closed.Do(func() { p.reg.Release(p.regKey) })
	return nil
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// smallNumbers are shared, read-only header values for common numbers, so writing a
// header allocates nothing. Their capacity equals their length: an append copies.
var smallNumbers = func() (t [1024][]string) {
	for i := range t {
		t[i] = []string{strconv.Itoa(i)}[:1:1]
	}
	return
}()

func number(n int64) []string {
	if n >= 0 && n < int64(len(smallNumbers)) {
		return smallNumbers[n]
	}
	return []string{strconv.FormatInt(n, 10)}
}

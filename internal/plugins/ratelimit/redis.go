package ratelimit

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Redis is the cluster-wide backend: a sliding-window counter per key, kept in Redis
// and shared by every gateway that points at the same server, prefix and route.
//
// Algorithm (two-bucket sliding-window counter): time is cut into fixed windows of
// length W. A key stores the number of requests counted in the current window (cur)
// and in the previous one (prev). At elapsed time e into the current window, the
// estimated count over the last W is prev·(W−e)/W + cur; a request is allowed when
// that estimate plus one is at most the limit. This assumes the previous window's
// requests were spread evenly; the error is bounded by the previous window's count and
// is zero when traffic is uniform or the previous window was empty. In exchange each key
// is one small hash (three fields) whatever the limit, and each request is one Lua
// script — one round trip, O(1) work — unlike an exact sorted-set log, which stores one
// member per request (O(limit) memory, O(log n) per request).
//
// Time comes from the Redis server (TIME), so gateways with skewed clocks agree. Keys
// expire two windows after their last write. While Redis fails, requests go to the
// fallback (see fallback.go) without waiting for Redis.
type Redis struct {
	conn     *redisConn
	prefix   string
	limit    int64
	windowUS int64 // window in microseconds
	timeout  time.Duration
	fb       fallback
	// now, when set, replaces the Redis server clock (microseconds; tests).
	now func() int64
}

// slidingWindow counts (or, with ARGV[4] == "1", only inspects) one request.
// KEYS[1]: the key's hash. ARGV: window µs, limit, now µs (0: server time), peek.
// Returns {allowed, prev, cur, elapsed µs}; cur includes the request when allowed.
var slidingWindow = redis.NewScript(`
local w = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local idx = math.floor(now / w)
local elapsed = now - idx * w
local v = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local sw = tonumber(v[1])
local cur = tonumber(v[2]) or 0
local prev = tonumber(v[3]) or 0
if sw == nil or sw < idx - 1 then
  cur, prev = 0, 0
elseif sw == idx - 1 then
  cur, prev = 0, cur
end
local allowed = 0
if ARGV[4] ~= '1' and prev * (w - elapsed) / w + cur + 1 <= limit then
  cur = cur + 1
  allowed = 1
  redis.call('HSET', KEYS[1], 'w', idx, 'c', cur, 'p', prev)
  redis.call('PEXPIRE', KEYS[1], math.ceil(2 * w / 1000) + 1000)
end
return {allowed, prev, cur, elapsed}
`)

// newRedis builds the redis backend for a validated config.
func newRedis(cfg *Config, conn *redisConn) *Redis {
	pol := cfg.policy()
	return &Redis{
		conn:     conn,
		prefix:   cfg.Redis.Prefix,
		limit:    pol.Requests,
		windowUS: int64(pol.Window / time.Microsecond),
		timeout:  time.Duration(cfg.Redis.Timeout),
		fb:       newFallback(cfg.fallback, pol),
	}
}

// Take implements Limiter.
func (r *Redis) Take(k pluginutil.Key) Decision { return r.run(k, false) }

// Peek implements Limiter.
func (r *Redis) Peek(k pluginutil.Key) Decision { return r.run(k, true) }

func (r *Redis) run(k pluginutil.Key, peek bool) Decision {
	if !r.conn.usable() {
		return r.fb.decide(k, peek)
	}
	var now int64
	if r.now != nil {
		now = r.now()
	}
	p := "0"
	if peek {
		p = "1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	res, err := slidingWindow.Run(ctx, r.conn.client, []string{r.key(k)}, r.windowUS, r.limit, now, p).Int64Slice()
	cancel()
	if err != nil || len(res) != 4 {
		r.conn.failed(err)
		return r.fb.decide(k, peek)
	}
	r.conn.succeeded()
	return r.decision(res[0] == 1 || peek, res[1], res[2], res[3])
}

// key is prefix + kind + route (length-prefixed, so no two keys collide) + id.
func (r *Redis) key(k pluginutil.Key) string {
	var b strings.Builder
	b.Grow(len(r.prefix) + len(k.Route) + len(k.ID) + 16)
	b.WriteString(r.prefix)
	b.WriteString(k.Kind.String())
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(len(k.Route)))
	b.WriteByte(':')
	b.WriteString(k.Route)
	b.WriteByte(':')
	b.WriteString(k.ID)
	return b.String()
}

// decision turns the script's counts into a Decision (headers and Retry-After).
func (r *Redis) decision(allowed bool, prev, cur, elapsed int64) Decision {
	w, l := float64(r.windowUS), float64(r.limit)
	left := w - float64(elapsed) // µs until the current window ends
	est := float64(prev)*left/w + float64(cur)
	d := Decision{Allowed: allowed, Remaining: max(int64(math.Floor(l-est+1e-9)), 0)}
	switch {
	case cur > 0:
		d.Reset = micros(left + w)
	case prev > 0:
		d.Reset = micros(left)
	}
	if !allowed {
		d.Remaining = 0
		d.RetryAfter = micros(r.retryAfter(float64(prev), float64(cur), left))
	}
	return d
}

// retryAfter is how many µs until prev·(W−e)/W + cur + 1 ≤ limit holds again.
func (r *Redis) retryAfter(prev, cur, left float64) float64 {
	w, l := float64(r.windowUS), float64(r.limit)
	if cur+1 <= l && prev > 0 {
		// Within this window, once enough of prev has slid out.
		return max(left-(l-cur-1)*w/prev, 0)
	}
	// In the next window, cur becomes the previous count.
	if cur <= 0 {
		return left
	}
	return left + max(w-(l-1)*w/cur, 0)
}

func micros(us float64) time.Duration {
	return time.Duration(math.Ceil(us)) * time.Microsecond
}

package ratelimit

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// machineRedis is the Redis server of this machine used by the shared-limit tests.
const machineRedis = "127.0.0.1:6379"

var prefixSeq atomic.Int64

// testPrefix returns a key prefix unique to this test run and deletes its keys from
// the server at addr when the test ends.
func testPrefix(t testing.TB, addr string) string {
	p := fmt.Sprintf("portico:rl:test:%d:%d:%s:", time.Now().UnixNano(), prefixSeq.Add(1), t.Name())
	t.Cleanup(func() { deleteKeys(addr, p) })
	return p
}

func deleteKeys(addr, prefix string) int {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for it.Next(ctx) {
		c.Del(ctx, it.Val())
		n++
	}
	return n
}

func countKeys(t testing.TB, addr, prefix string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	keys, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// needRedis fails the test when the machine's Redis does not answer.
func needRedis(t testing.TB) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: machineRedis, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s: %v", machineRedis, err)
	}
}

func redisCfg(addr, prefix, extra string) string {
	return fmt.Sprintf(`{"policy":"redis","redis":{"address":%q,"prefix":%q}%s}`, addr, prefix, extra)
}

// buildJSON builds a chain from a config with the given numbers merged in.
func buildRedis(t testing.TB, env *plugin.Env, requests int, window, addr, prefix, extra string) *plugin.Chain {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(redisCfg(addr, prefix, extra)), &m); err != nil {
		t.Fatal(err)
	}
	m["requests"], m["window"] = requests, window
	b, _ := json.Marshal(m)
	return build(t, env, string(b))
}

func TestRedisConfig(t *testing.T) {
	bad := map[string]string{
		`{"requests":1,"window":"1s","policy":"cluster"}`:                            "policy",
		`{"requests":1,"window":"1s","redis":{}}`:                                    "redis",
		`{"requests":1,"window":"1s","fallback":"allow"}`:                            "fallback",
		`{"requests":1,"window":"1s","policy":"redis","fallback":"maybe"}`:           "fallback",
		`{"requests":1,"window":"1s","policy":"redis","burst":3}`:                    "burst",
		`{"requests":1,"window":"1s","policy":"redis","redis":{"address":"nohost"}}`: "redis.address",
		`{"requests":1,"window":"1s","policy":"redis","redis":{"timeout":"10s"}}`:    "redis.timeout",
		`{"requests":1,"window":"1s","policy":"redis","redis":{"db":-1}}`:            "redis.db",
	}
	for cfg, field := range bad {
		_, err := plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(cfg)}}, &plugin.Env{})
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: want error on %s, got %v", cfg, field, err)
		}
	}
	var c Config
	if err := json.Unmarshal([]byte(`{"requests":1,"window":"1s","policy":"redis"}`), &c); err != nil || c.Validate() != nil {
		t.Fatal(err)
	}
	if c.Redis.Address != defaultRedisAddress || c.Redis.Prefix != defaultRedisPrefix ||
		time.Duration(c.Redis.Timeout) != defaultRedisTimeout || c.fallback != fallbackLocal {
		t.Fatalf("defaults: %+v %+v", c, c.Redis)
	}
}

// TestRedisClusterWide: two gateways (separate plugin instances, environments and
// Redis clients) share one limit; concurrent requests across both get exactly it.
func TestRedisClusterWide(t *testing.T) {
	t.Parallel()
	needRedis(t)
	prefix := testPrefix(t, machineRedis)
	gw := []*plugin.Chain{
		buildRedis(t, &plugin.Env{Shared: &plugin.Shared{}}, 10, "1m", machineRedis, prefix, ""),
		buildRedis(t, &plugin.Env{Shared: &plugin.Shared{}}, 10, "1m", machineRedis, prefix, ""),
	}
	var allowed, limited [2]atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			st, h := do(t, gw[i%2], newCtx("r", "10.0.0.1"))
			switch {
			case st == 200 && h.Get("RateLimit-Limit") == "10" && h.Get("RateLimit-Policy") == "10;w=60":
				allowed[i%2].Add(1)
			case st == 429 && h.Get("RateLimit-Remaining") == "0" && h.Get("Retry-After") != "":
				limited[i%2].Add(1)
			default:
				t.Errorf("request %d: %d %v", i, st, h)
			}
		})
	}
	wg.Wait()
	a := allowed[0].Load() + allowed[1].Load()
	t.Logf("allowed gateway A %d, B %d; limited %d, %d", allowed[0].Load(), allowed[1].Load(), limited[0].Load(), limited[1].Load())
	if a != 10 || allowed[0].Load() == 0 || allowed[1].Load() == 0 {
		t.Fatalf("allowed %d across both gateways, want exactly 10 (from both)", a)
	}
	// Another client has its own window; the headers count down from Redis.
	for i, want := range []string{"9", "8", "7"} {
		st, h := do(t, gw[i%2], newCtx("r", "10.0.0.2"))
		reset, _ := strconv.Atoi(h.Get("RateLimit-Reset"))
		if st != 200 || h.Get("RateLimit-Remaining") != want || reset < 60 || reset > 120 {
			t.Fatalf("request %d: %d %v", i, st, h)
		}
	}
	if n := countKeys(t, machineRedis, prefix); n != 2 {
		t.Fatalf("%d keys under the prefix, want 2", n)
	}
}

// TestRedisWindowSlides checks the sliding-window arithmetic against real Redis with
// a controlled clock.
func TestRedisWindowSlides(t *testing.T) {
	t.Parallel()
	needRedis(t)
	cfg := &Config{Requests: 10, Window: pluginutil.Duration(10 * time.Second), Policy: "redis",
		Redis: &RedisConfig{Address: machineRedis, Prefix: testPrefix(t, machineRedis)}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newRedis(cfg, sharedRedisConn(cfg.Redis, nil))
	const t0 = int64(1e15) // a window boundary, in µs
	var now atomic.Int64
	r.now = now.Load
	k := pluginutil.Key{Route: "r", Kind: pluginutil.KeyIP, ID: "1.2.3.4"}
	take := func(n int) (ok int, last Decision) {
		for range n {
			last = r.Take(k)
			if last.Allowed {
				ok++
			}
		}
		return
	}
	now.Store(t0)
	if d := r.Take(k); !d.Allowed || d.Remaining != 9 || d.Reset != 20*time.Second {
		t.Fatalf("first: %+v", d)
	}
	if ok, d := take(10); ok != 9 || d.RetryAfter != 11*time.Second {
		t.Fatalf("window 0: %d allowed, last %+v", ok, d)
	}
	// Half-way through the next window half of the previous count still weighs.
	now.Store(t0 + 15e6)
	if ok, d := take(6); ok != 5 || d.RetryAfter != time.Second {
		t.Fatalf("window 1 at 50%%: %d allowed, last %+v", ok, d)
	}
	if d := r.Peek(k); d.Remaining != 0 || d.Reset != 15*time.Second {
		t.Fatalf("peek: %+v", d)
	}
	now.Store(t0 + 16e6)
	if ok, _ := take(2); ok != 1 {
		t.Fatalf("window 1 at 60%%: %d allowed, want 1", ok)
	}
	// Two windows later nothing counts any more.
	now.Store(t0 + 30e6)
	if d := r.Peek(k); !d.Allowed || d.Remaining != 10 || d.Reset != 0 {
		t.Fatalf("peek after idle: %+v", d)
	}
	if ok, _ := take(11); ok != 10 {
		t.Fatalf("after two windows: %d allowed, want 10", ok)
	}
	ttl, err := r.conn.client.PTTL(context.Background(), r.key(k)).Result()
	if err != nil || ttl <= 0 || ttl > 21*time.Second {
		t.Fatalf("key TTL %v %v", ttl, err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// ownRedis is a redis-server process started (and only ever killed) by a test.
type ownRedis struct {
	t    testing.TB
	bin  string
	port string
	cmd  *exec.Cmd
}

func startOwnRedis(t testing.TB) *ownRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is required for this test: %v", err)
	}
	r := &ownRedis{t: t, bin: bin, port: freePort(t)}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *ownRedis) addr() string { return "127.0.0.1:" + r.port }

func (r *ownRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %s did not start", r.port)
		}
	}
}

// stop kills the process this test started, by its PID.
func (r *ownRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

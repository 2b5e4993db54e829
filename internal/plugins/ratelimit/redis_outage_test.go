package ratelimit

import (
	"slices"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/plugin"
)

// TestRedisStoppedMidTest runs load against a redis-backed limit, kills the test's own
// redis-server mid-way, checks the configured fallback answers without stalls, then
// restarts Redis on the same port and checks the limiter goes back to it.
func TestRedisStoppedMidTest(t *testing.T) {
	for _, mode := range []string{fallbackLocal, fallbackAllow, fallbackDeny} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testOutage(t, mode)
		})
	}
}

// burst sends n requests for ip and returns the statuses.
func burst(t *testing.T, ch *plugin.Chain, ip string, n int) []int {
	var st []int
	for range n {
		s, _ := do(t, ch, newCtx("r", ip))
		st = append(st, s)
	}
	return st
}

func counts(st []int) map[int]int {
	m := map[int]int{}
	for _, s := range st {
		m[s]++
	}
	return m
}

func testOutage(t *testing.T, mode string) {
	srv := startOwnRedis(t)
	prefix := testPrefix(t, srv.addr())
	env := &plugin.Env{Shared: &plugin.Shared{}}
	extra := `,"fallback":"` + mode + `"`
	ch := buildRedis(t, env, 5, "1m", srv.addr(), prefix, extra)
	cfg := &Config{Requests: 5, Window: 60e9, Policy: "redis", Redis: &RedisConfig{Address: srv.addr(), Prefix: prefix}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	conn := sharedRedisConn(cfg.Redis, env) // the chain's connection

	// Up: limits come from Redis.
	if c := counts(burst(t, ch, "10.0.0.1", 7)); c[200] != 5 || c[429] != 2 {
		t.Fatalf("redis up: %v", c)
	}
	if n := countKeys(t, srv.addr(), prefix); n != 1 {
		t.Fatalf("%d keys in redis, want 1", n)
	}

	// Load from 8 clients while Redis goes away.
	var (
		mu      sync.Mutex
		before  []time.Duration
		during  []time.Duration
		down    bool
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		statusN = map[int]int{}
	)
	for g := range 8 {
		wg.Go(func() {
			ip := "10.1.0." + string(rune('1'+g))
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				st, _ := do(t, ch, newCtx("r", ip))
				el := time.Since(start)
				mu.Lock()
				if down {
					during = append(during, el)
					statusN[st]++
				} else {
					before = append(before, el)
				}
				mu.Unlock()
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	down = true
	mu.Unlock()
	srv.stop() // kill our own redis-server by PID
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if conn.opened.Load() == 0 || conn.usable() {
		t.Fatal("circuit did not open while Redis was down")
	}
	p99b, p99d := p99(before), p99(during)
	t.Logf("%s: %d requests with redis up (p99 %v), %d while down (p99 %v, max %v), statuses while down %v",
		mode, len(before), p99b, len(during), p99d, slices.Max(during), statusN)
	if len(during) < 100 || p99d > 20*time.Millisecond {
		t.Fatalf("while down: %d requests, p99 %v", len(during), p99d)
	}

	// Down: the fallback decides, for a client Redis never saw.
	c := counts(burst(t, ch, "10.0.0.9", 7))
	switch mode {
	case fallbackLocal:
		if c[200] != 5 || c[429] != 2 {
			t.Fatalf("local fallback: %v", c)
		}
	case fallbackAllow:
		if c[200] != 7 {
			t.Fatalf("allow fallback: %v", c)
		}
	case fallbackDeny:
		if c[503] != 7 {
			t.Fatalf("deny fallback: %v", c)
		}
	}

	// Redis returns on the same port: the probe closes the circuit.
	srv.start()
	back := time.Now()
	for !conn.usable() {
		if time.Since(back) > 5*time.Second {
			t.Fatal("limiter did not go back to Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s: back on Redis %v after restart", mode, time.Since(back).Round(time.Millisecond))
	if c := counts(burst(t, ch, "10.0.0.3", 7)); c[200] != 5 || c[429] != 2 {
		t.Fatalf("redis back: %v", c)
	}
	if n := countKeys(t, srv.addr(), prefix); n != 1 {
		t.Fatalf("%d keys in the restarted redis, want 1", n)
	}
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*99/100]
}

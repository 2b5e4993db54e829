package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// benchRedis returns a redis limiter on the machine's Redis with a generous limit.
func benchRedis(b *testing.B) *Redis {
	needRedis(b)
	cfg := &Config{Requests: 1 << 30, Window: pluginutil.Duration(time.Minute), Policy: "redis",
		Redis: &RedisConfig{Address: machineRedis, Prefix: testPrefix(b, machineRedis)}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	return newRedis(cfg, sharedRedisConn(cfg.Redis, nil))
}

// BenchmarkRedisTake: one Take (one EVALSHA round trip over loopback) per op.
func BenchmarkRedisTake(b *testing.B) {
	r := benchRedis(b)
	keys := make([]pluginutil.Key, 1024)
	for i := range keys {
		keys[i] = pluginutil.Key{Route: "r", Kind: pluginutil.KeyIP, ID: fmt.Sprint("10.3.", i/256, ".", i%256)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !r.Take(keys[i%len(keys)]).Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkRedisTakeParallel: concurrent Takes sharing the client's connection pool.
func BenchmarkRedisTakeParallel(b *testing.B) {
	r := benchRedis(b)
	keys := make([]pluginutil.Key, 1024)
	for i := range keys {
		keys[i] = pluginutil.Key{Route: "r", Kind: pluginutil.KeyIP, ID: fmt.Sprint("10.4.", i/256, ".", i%256)}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			r.Take(keys[i%len(keys)])
		}
	})
}

// BenchmarkRedisFallbackTake: a Take while the circuit is open (local fallback).
func BenchmarkRedisFallbackTake(b *testing.B) {
	r := benchRedis(b)
	r.conn.open.Store(true)
	k := pluginutil.Key{Route: "r", Kind: pluginutil.KeyRoute}
	b.ReportAllocs()
	for b.Loop() {
		r.Take(k)
	}
}

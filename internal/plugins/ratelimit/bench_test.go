package ratelimit

import (
	"fmt"
	"net/http"
	"testing"

	"portico.dev/portico/internal/plugin"
)

// benchRequests runs access + response headers per op on a pooled-style Context,
// cycling through n client IPs.
func benchRequests(b *testing.B, cfg string, n int) {
	ch := build(b, &plugin.Env{}, cfg)
	r, _ := http.NewRequest("GET", "http://x/", nil)
	ips := make([]string, n)
	for i := range ips {
		ips[i] = fmt.Sprint("10.1.", i/256, ".", i%256)
	}
	c := &plugin.Context{}
	h := http.Header{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Reset()
		c.Request, c.ClientIP, c.Route = r, ips[i%n], "route-1"
		if err := ch.Run(plugin.PhaseAccess, c); err != nil {
			b.Fatal(err)
		}
		c.Status, c.Header = 200, h
		if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIPKey: 4096 clients, each well under its limit (no rejections).
func BenchmarkIPKey(b *testing.B) {
	benchRequests(b, `{"requests":1000,"window":"1s"}`, 4096)
}

// BenchmarkRouteKey: one bucket for all; the huge limit keeps it from rejecting, and
// RateLimit-Remaining ≥ 1024 costs one small allocation to format.
func BenchmarkRouteKey(b *testing.B) {
	benchRequests(b, `{"requests":1000000000,"window":"1s","key":"route"}`, 1)
}

func BenchmarkIPKeyParallel(b *testing.B) {
	ch := build(b, &plugin.Env{}, `{"requests":1000,"window":"1s"}`)
	r, _ := http.NewRequest("GET", "http://x/", nil)
	ips := make([]string, 8192)
	for i := range ips {
		ips[i] = fmt.Sprint("10.2.", i/256, ".", i%256)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, h, i := &plugin.Context{}, http.Header{}, 0
		for pb.Next() {
			i++
			c.Reset()
			c.Request, c.ClientIP, c.Route = r, ips[i%len(ips)], "route-1"
			_ = ch.Run(plugin.PhaseAccess, c)
			c.Status, c.Header = 200, h
			_ = ch.Run(plugin.PhaseResponseHeaders, c)
		}
	})
}

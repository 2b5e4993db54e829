package ratelimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// fakeClock replaces the limiter clock for one test.
func fakeClock(t *testing.T) *atomic.Int64 {
	var now atomic.Int64
	now.Store(int64(time.Hour))
	old := clock
	clock = now.Load
	t.Cleanup(func() { clock = old })
	return &now
}

func build(t testing.TB, env *plugin.Env, cfg string) *plugin.Chain {
	t.Helper()
	ch, err := plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(cfg)}}, env)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func newCtx(route, ip string) *plugin.Context {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = ip + ":1234"
	return &plugin.Context{Request: r, ClientIP: ip, Route: route}
}

// do runs one request: access, then (when allowed) response headers. It returns the
// status and the headers the client sees.
func do(t testing.TB, ch *plugin.Chain, c *plugin.Context) (int, http.Header) {
	t.Helper()
	if err := ch.Run(plugin.PhaseAccess, c); err != nil {
		var r *plugin.Reply
		if !errors.As(err, &r) {
			t.Fatal(err)
		}
		return r.Status, r.Header
	}
	c.Status, c.Header = 200, http.Header{}
	if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
		t.Fatal(err)
	}
	return c.Status, c.Header
}

func TestBucketHeadersAndRetryAfter(t *testing.T) {
	now := fakeClock(t)
	ch := build(t, &plugin.Env{}, `{"requests":3,"window":"1m"}`)
	for i, want := range []struct{ rem, reset string }{{"2", "20"}, {"1", "40"}, {"0", "60"}} {
		st, h := do(t, ch, newCtx("r", "10.0.0.1"))
		if st != 200 || h.Get("RateLimit-Remaining") != want.rem || h.Get("RateLimit-Reset") != want.reset ||
			h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Policy") != "3;w=60" {
			t.Fatalf("request %d: %d %v", i, st, h)
		}
	}
	st, h := do(t, ch, newCtx("r", "10.0.0.1"))
	if st != 429 || h.Get("Retry-After") != "20" || h.Get("RateLimit-Remaining") != "0" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("over limit: %d %v", st, h)
	}
	now.Add(int64(20 * time.Second))
	if st, h := do(t, ch, newCtx("r", "10.0.0.1")); st != 200 || h.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("after refill: %d %v", st, h)
	}
	if st, _ := do(t, ch, newCtx("r", "10.0.0.2")); st != 200 {
		t.Fatal("other IP limited")
	}
}

func TestRejectBodyIsJSONEnvelope(t *testing.T) {
	fakeClock(t)
	ch := build(t, &plugin.Env{}, `{"requests":1,"window":"1s"}`)
	do(t, ch, newCtx("r", "1.1.1.1"))
	err := ch.Run(plugin.PhaseAccess, newCtx("r", "1.1.1.1"))
	var r *plugin.Reply
	if !errors.As(err, &r) || !strings.Contains(string(r.Body), `"code":"rate_limited"`) {
		t.Fatalf("%v", err)
	}
}

func TestBurst(t *testing.T) {
	now := fakeClock(t)
	ch := build(t, &plugin.Env{}, `{"requests":10,"window":"1s","burst":2}`)
	got := ""
	for range 3 {
		st, _ := do(t, ch, newCtx("r", "1.1.1.1"))
		got += fmt.Sprint(st, " ")
	}
	now.Add(int64(100 * time.Millisecond))
	st, h := do(t, ch, newCtx("r", "1.1.1.1"))
	got += fmt.Sprint(st)
	if got != "200 200 429 200" || h.Get("RateLimit-Limit") != "2" || h.Get("RateLimit-Policy") != "10;w=1;burst=2" {
		t.Fatalf("%q %v", got, h)
	}
}

func TestKeys(t *testing.T) {
	fakeClock(t)
	alice := &plugin.Consumer{Name: "alice"}
	cases := []struct {
		name, cfg string
		a, b      func() *plugin.Context // b shares a's bucket?
		shared    bool
	}{
		{"consumer same person, two IPs", `{"requests":1,"window":"1m","key":"consumer"}`,
			func() *plugin.Context { c := newCtx("r", "1.1.1.1"); c.Consumer = alice; return c },
			func() *plugin.Context { c := newCtx("r", "2.2.2.2"); c.Consumer = alice; return c }, true},
		{"anonymous falls back to ip", `{"requests":1,"window":"1m","key":"consumer"}`,
			func() *plugin.Context { return newCtx("r", "1.1.1.1") },
			func() *plugin.Context { return newCtx("r", "2.2.2.2") }, false},
		{"header", `{"requests":1,"window":"1m","key":"header","header":"x-tenant"}`,
			func() *plugin.Context { c := newCtx("r", "1.1.1.1"); c.Request.Header.Set("X-Tenant", "t1"); return c },
			func() *plugin.Context { c := newCtx("r", "2.2.2.2"); c.Request.Header.Set("X-Tenant", "t1"); return c }, true},
		{"route", `{"requests":1,"window":"1m","key":"route"}`,
			func() *plugin.Context { return newCtx("r", "1.1.1.1") },
			func() *plugin.Context { return newCtx("r", "2.2.2.2") }, true},
		{"routes are separate", `{"requests":1,"window":"1m","key":"route"}`,
			func() *plugin.Context { return newCtx("r1", "1.1.1.1") },
			func() *plugin.Context { return newCtx("r2", "1.1.1.1") }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := build(t, &plugin.Env{}, tc.cfg)
			if st, _ := do(t, ch, tc.a()); st != 200 {
				t.Fatal("first request limited")
			}
			st, _ := do(t, ch, tc.b())
			if (st == 429) != tc.shared {
				t.Fatalf("second request %d, shared bucket %v", st, tc.shared)
			}
		})
	}
}

func TestCountersSurviveReloadAndAreDroppedWhenUnused(t *testing.T) {
	fakeClock(t)
	env := &plugin.Env{Shared: &plugin.Shared{}}
	cfg := `{"requests":2,"window":"1m"}`
	old := build(t, env, cfg)
	do(t, old, newCtx("r", "1.1.1.1"))
	do(t, old, newCtx("r", "1.1.1.1"))
	// Reload: the new snapshot is built before the old one is retired.
	cur := build(t, env, cfg)
	old.Close()
	if st, _ := do(t, cur, newCtx("r", "1.1.1.1")); st != 429 {
		t.Fatal("counters lost on reload")
	}
	changed := build(t, env, `{"requests":3,"window":"1m"}`)
	if st, _ := do(t, changed, newCtx("r", "1.1.1.1")); st != 200 {
		t.Fatal("a changed config must start with fresh counters")
	}
	reg := pluginutil.SharedRegistry(env, registryName)
	if reg.Len() != 2 {
		t.Fatalf("registry holds %d limiters", reg.Len())
	}
	cur.Close()
	cur.Close() // idempotent
	if reg.Len() != 2 {
		t.Fatal("released limiter must stay for the grace period")
	}
}

func TestEvictionBoundsMemory(t *testing.T) {
	now := fakeClock(t)
	l := NewLocal(Policy{Requests: 10, Window: time.Minute, Burst: 10}, 640)
	for i := range 10000 {
		l.Take(pluginutil.Key{Kind: pluginutil.KeyIP, ID: fmt.Sprint("10.0.", i/256, ".", i%256)})
	}
	if n := l.Len(); n > 640 {
		t.Fatalf("%d keys kept, cap 640", n)
	}
	// Keys whose bucket refilled are swept first; an active key survives.
	l = NewLocal(Policy{Requests: 10, Window: time.Minute, Burst: 10}, 6400)
	for i := range 10000 {
		l.Take(pluginutil.Key{Kind: pluginutil.KeyIP, ID: fmt.Sprint("old-", i)})
	}
	hot := pluginutil.Key{Kind: pluginutil.KeyIP, ID: "hot"}
	now.Add(int64(time.Hour))
	for range 10 {
		l.Take(hot)
	}
	for i := range 1000 {
		l.Take(pluginutil.Key{Kind: pluginutil.KeyIP, ID: fmt.Sprint("new-", i)})
	}
	if l.Take(hot).Allowed {
		t.Fatal("active key was evicted while idle keys were available")
	}
}

func TestConcurrentTakesNeverOvershoot(t *testing.T) {
	fakeClock(t)
	ch := build(t, &plugin.Env{}, `{"requests":1000,"window":"1h","key":"route"}`)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if st, _ := do(t, ch, newCtx("r", fmt.Sprint("1.1.1.", g))); st == 200 {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 1000 {
		t.Fatalf("allowed %d of 4000, want exactly 1000", allowed.Load())
	}
}

func TestConfigValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{"window":"1m"}`:                                  "requests",
		`{"requests":-1,"window":"1m"}`:                    "requests",
		`{"requests":5}`:                                   "window",
		`{"requests":5,"window":"500ms"}`:                  "window",
		`{"requests":5,"window":"1m","key":"user"}`:        "key",
		`{"requests":5,"window":"1m","key":"header"}`:      "header",
		`{"requests":5,"window":"1m","header":"x-a"}`:      "header",
		`{"requests":5,"window":"1m","burst":-2}`:          "burst",
		`{"requests":1,"window":"744h","burst":100000000}`: "burst",
	} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		var fe *plugin.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v, want field %q", cfg, err, field)
		}
	}
	if _, err := plugin.DecodeConfig(Name, json.RawMessage(`{"requests":5,"window":"1x"}`)); err == nil {
		t.Error("bad duration accepted")
	}
	if _, err := plugin.DecodeConfig(Name, json.RawMessage(`{"requests":5,"window":60,"key":"consumer"}`)); err != nil {
		t.Errorf("numeric seconds: %v", err)
	}
}

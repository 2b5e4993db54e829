package concurrencylimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

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
	return &plugin.Context{Request: r, ClientIP: ip, Route: route}
}

func status(err error) int {
	var r *plugin.Reply
	if errors.As(err, &r) {
		return r.Status
	}
	if err != nil {
		return 500
	}
	return 200
}

func TestLimitAndRelease(t *testing.T) {
	ch := build(t, &plugin.Env{}, `{"max":2}`)
	a, b, c := newCtx("r", "1.1.1.1"), newCtx("r", "2.2.2.2"), newCtx("r", "3.3.3.3")
	if status(ch.Run(plugin.PhaseAccess, a)) != 200 || status(ch.Run(plugin.PhaseAccess, b)) != 200 {
		t.Fatal("under the limit")
	}
	err := ch.Run(plugin.PhaseAccess, c)
	var r *plugin.Reply
	if !errors.As(err, &r) || r.Status != 503 || !strings.Contains(string(r.Body), "concurrency_limited") || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %v", err)
	}
	ch.Log(c) // the rejected request holds nothing
	ch.Log(a)
	ch.Log(a) // idempotent
	if status(ch.Run(plugin.PhaseAccess, c)) != 200 {
		t.Fatal("slot not released")
	}
	if status(ch.Run(plugin.PhaseAccess, newCtx("other", "1.1.1.1"))) != 200 {
		t.Fatal("routes must count separately")
	}
}

func TestKeyByIP(t *testing.T) {
	ch := build(t, &plugin.Env{}, `{"max":1,"key":"ip"}`)
	if status(ch.Run(plugin.PhaseAccess, newCtx("r", "1.1.1.1"))) != 200 ||
		status(ch.Run(plugin.PhaseAccess, newCtx("r", "2.2.2.2"))) != 200 ||
		status(ch.Run(plugin.PhaseAccess, newCtx("r", "1.1.1.1"))) != 503 {
		t.Fatal("ip key")
	}
}

func TestInFlightSurvivesReload(t *testing.T) {
	env := &plugin.Env{Shared: &plugin.Shared{}}
	old := build(t, env, `{"max":1}`)
	a := newCtx("r", "1.1.1.1")
	if status(old.Run(plugin.PhaseAccess, a)) != 200 {
		t.Fatal()
	}
	cur := build(t, env, `{"max":1}`)
	old.Close()
	if status(cur.Run(plugin.PhaseAccess, newCtx("r", "2.2.2.2"))) != 503 {
		t.Fatal("request in flight on the old snapshot not counted")
	}
	old.Log(a) // the old request finishes on its own snapshot
	if status(cur.Run(plugin.PhaseAccess, newCtx("r", "2.2.2.2"))) != 200 {
		t.Fatal("old snapshot's release not seen")
	}
}

func TestConcurrentNeverExceedsMax(t *testing.T) {
	ch := build(t, &plugin.Env{}, `{"max":3}`)
	var inFlight, peak, served atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				c := newCtx("r", "1.1.1.1")
				if status(ch.Run(plugin.PhaseAccess, c)) == 200 {
					n := inFlight.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					served.Add(1)
					inFlight.Add(-1)
				}
				ch.Log(c)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 3 || served.Load() == 0 {
		t.Fatalf("peak %d served %d", peak.Load(), served.Load())
	}
}

func TestIdleKeysAreSwept(t *testing.T) {
	cs := NewCounters()
	busy := pluginutil.Key{Kind: pluginutil.KeyIP, ID: "busy"}
	if cs.Acquire(busy, 1) == nil {
		t.Fatal()
	}
	for i := range 100000 {
		k := pluginutil.Key{Kind: pluginutil.KeyIP, ID: fmt.Sprint(i)}
		s := cs.Acquire(k, 1)
		s.n.Add(-1)
	}
	if n := cs.Len(); n > numShards*sweepAbove+1 {
		t.Fatalf("%d keys kept", n)
	}
	if cs.InFlight(busy) != 1 || cs.Acquire(busy, 1) != nil {
		t.Fatal("busy key lost")
	}
}

func TestConfigValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{}`:                                   "max",
		`{"max":0}`:                            "max",
		`{"max":1,"key":"nope"}`:               "key",
		`{"max":1,"key":"header"}`:             "header",
		`{"max":1,"key":"ip","header":"x-a"}`:  "header",
		`{"max":1,"key":"header","header":""}`: "header",
	} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		var fe *plugin.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v, want field %q", cfg, err, field)
		}
	}
}

func BenchmarkAccessLog(b *testing.B) {
	ch := build(b, &plugin.Env{}, `{"max":1000}`)
	r, _ := http.NewRequest("GET", "http://x/", nil)
	c := &plugin.Context{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		c.Request, c.ClientIP, c.Route = r, "1.1.1.1", "route-1"
		if err := ch.Run(plugin.PhaseAccess, c); err != nil {
			b.Fatal(err)
		}
		ch.Log(c)
	}
}

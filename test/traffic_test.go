package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/proxy"
)

// Backend modes for controllable test backends.
const (
	modeOK int32 = iota
	modeFail
	modeSlow
)

// backend is a real HTTP server on 127.0.0.1 that can be switched between answering,
// failing with 503, answering slowly, and being killed.
type backend struct {
	addr  string
	mode  atomic.Int32
	hits  atomic.Int64
	srv   *http.Server
	slow  time.Duration
	ready chan struct{}
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{slow: 300 * time.Millisecond}
	ln := listen(t, "127.0.0.1:0")
	b.addr = ln.Addr().String()
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if b.mode.Load() == modeFail {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		b.hits.Add(1)
		switch b.mode.Load() {
		case modeFail:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case modeSlow:
			time.Sleep(b.slow)
		}
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	})}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// kill closes the listener and every connection: later connects are refused.
func (b *backend) kill() { b.srv.Close() }

type loadResult struct {
	ok, failed int64
	latencies  []time.Duration
	errors     []string
}

func (r *loadResult) successRate() float64 {
	return float64(r.ok) / float64(r.ok+r.failed)
}

func (r *loadResult) p99() time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	return r.latencies[len(r.latencies)*99/100]
}

// runLoad sends GETs from workers goroutines for d (bounded) and calls during(elapsed)
// every 10 ms so a scenario can change backends mid-load.
func runLoad(t *testing.T, url string, workers int, d time.Duration, during func(time.Duration)) *loadResult {
	t.Helper()
	res := &loadResult{}
	var mu sync.Mutex
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 5 * time.Second}
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d %s", resp.StatusCode, resp.Header.Get("X-Portico-Error"))
					}
				}
				lat := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.failed++
					if len(res.errors) < 5 {
						res.errors = append(res.errors, err.Error())
					}
				} else {
					res.ok++
					res.latencies = append(res.latencies, lat)
				}
				mu.Unlock()
			}
		}()
	}
	for time.Since(start) < d {
		if during != nil {
			during(time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	return res
}

func trafficConfig(port int, upstreamExtra, routeExtra string, backends ...*backend) string {
	var eps []string
	for _, b := range backends {
		eps = append(eps, fmt.Sprintf("{address: %q}", b.addr))
	}
	return fmt.Sprintf(`apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, port: %d, protocol: HTTP, address: 127.0.0.1}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: app}
spec:
  endpoints: [%s]
%s---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: app}
spec:
  matches: [{path: {type: PathPrefix, value: /}}]
  backends: [{upstream: app}]
%s`, port, strings.Join(eps, ", "), upstreamExtra, routeExtra)
}

func startTrafficProxy(t *testing.T, cfg string) string {
	t.Helper()
	rt := proxy.New(proxy.Options{})
	t.Cleanup(func() { rt.Shutdown(context.Background()) })
	if err := rt.Apply(snapshotFromYAML(t, cfg)); err != nil {
		t.Fatal(err)
	}
	port := rt.Snapshot().Listeners[0].Port
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitHTTP(t, url, 200)
	return url
}

const resilientUpstream = `  loadBalancer: {algorithm: least-request}
  healthCheck:
    active: {http: {path: /healthz}, interval: 200ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 1}
    passive: {consecutiveFailures: 2, ejectionTime: 2s}
`

const resilientRoute = `  retry: {attempts: 2, on: [connect-failure, reset, gateway-error], perTryTimeout: 1s}
`

// TestEndpointKilledMidLoad: one of three endpoints dies under load; retries on another
// endpoint and ejection keep the client's success rate at 99.9% or better.
func TestEndpointKilledMidLoad(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	url := startTrafficProxy(t, trafficConfig(freePort(t), resilientUpstream, resilientRoute, a, b, c))
	killed := false
	res := runLoad(t, url, 8, 3*time.Second, func(el time.Duration) {
		if !killed && el > time.Second {
			b.kill()
			killed = true
		}
	})
	bAfter := b.hits.Load()
	t.Logf("endpoint killed mid-load: %d ok, %d failed, success %.4f%%, p99 %v, hits a=%d b=%d c=%d",
		res.ok, res.failed, 100*res.successRate(), res.p99(), a.hits.Load(), bAfter, c.hits.Load())
	if res.successRate() < 0.999 {
		t.Fatalf("success rate %.4f%% < 99.9%% (errors %v)", 100*res.successRate(), res.errors)
	}
	if res.ok < 1000 {
		t.Fatalf("only %d requests: load too small to mean anything", res.ok)
	}
}

// TestAllEndpointsFailingStaysUnderRetryBudget: with every endpoint answering 503 and a
// route asking for 3 retries, the default retry budget keeps the load reaching the
// upstream at no more than 1.2 times the client's request rate (no retry storm).
func TestAllEndpointsFailingStaysUnderRetryBudget(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	url := startTrafficProxy(t, trafficConfig(freePort(t), "", "  retry: {attempts: 3, on: [gateway-error]}\n", a, b, c))
	// The warm-up requests that reached a backend passed through the same budget: count
	// them on both sides, so the ratio is over every request the proxy handled.
	warm := a.hits.Load() + b.hits.Load() + c.hits.Load()
	for _, x := range []*backend{a, b, c} {
		x.mode.Store(modeFail)
	}
	res := runLoad(t, url, 8, 3*time.Second, nil)
	client := res.ok + res.failed + warm
	upstream := a.hits.Load() + b.hits.Load() + c.hits.Load()
	ratio := float64(upstream) / float64(client)
	t.Logf("all endpoints failing: %d client requests, %d upstream requests, amplification %.4fx", client, upstream, ratio)
	if ratio > 1.2 {
		t.Fatalf("retry amplification %.3fx > 1.2x", ratio)
	}
	if res.ok != 0 {
		t.Fatalf("%d requests succeeded against failing backends", res.ok)
	}
}

// TestSlowEndpointIsAvoided: one of three endpoints answers slowly; least-request sends
// it a small share and per-try timeouts bound what clients wait.
func TestSlowEndpointIsAvoided(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	c.mode.Store(modeSlow)
	url := startTrafficProxy(t, trafficConfig(freePort(t), "  loadBalancer: {algorithm: least-request}\n", resilientRoute, a, b, c))
	res := runLoad(t, url, 8, 3*time.Second, nil)
	total := a.hits.Load() + b.hits.Load() + c.hits.Load()
	share := float64(c.hits.Load()) / float64(total)
	t.Logf("slow endpoint: %d ok, %d failed, slow share %.2f%%, p99 %v", res.ok, res.failed, 100*share, res.p99())
	if res.failed != 0 {
		t.Fatalf("%d failures: %v", res.failed, res.errors)
	}
	if share > 0.10 {
		t.Fatalf("slow endpoint got %.1f%% of requests; least-request should keep it under 10%%", 100*share)
	}
}

// TestFlappingEndpoint: one endpoint alternates between answering and failing every
// 300 ms; passive ejection plus retries keep clients at 99.9% success or better.
func TestFlappingEndpoint(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	url := startTrafficProxy(t, trafficConfig(freePort(t), resilientUpstream, resilientRoute, a, b, c))
	res := runLoad(t, url, 8, 3*time.Second, func(el time.Duration) {
		if (el/(300*time.Millisecond))%2 == 1 {
			b.mode.Store(modeFail)
		} else {
			b.mode.Store(modeOK)
		}
	})
	t.Logf("flapping endpoint: %d ok, %d failed, success %.4f%%, hits a=%d b=%d c=%d",
		res.ok, res.failed, 100*res.successRate(), a.hits.Load(), b.hits.Load(), c.hits.Load())
	if res.successRate() < 0.999 {
		t.Fatalf("success rate %.4f%% < 99.9%% (errors %v)", 100*res.successRate(), res.errors)
	}
}

package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/ops"
	"portico.dev/portico/internal/proxy"
	"portico.dev/portico/internal/proxy/upstream"
)

// TestHealthVisibleAndKeptAcrossSwaps: an endpoint failing its active checks shows as
// unhealthy in /debug/upstreams and in metrics, and a swap that leaves its upstream
// unchanged keeps that state (no fresh optimism, no re-probing needed).
func TestHealthVisibleAndKeptAcrossSwaps(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	port := freePort(t)
	check := "  healthCheck:\n    active: {http: {path: /healthz}, interval: 100ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 1}\n"
	metrics := observe.NewMetrics()
	rt := proxy.New(proxy.Options{Metrics: metrics})
	defer rt.Shutdown(context.Background())
	if err := rt.Apply(snapshotFromYAML(t, trafficConfig(port, check, "", a, b))); err != nil {
		t.Fatal(err)
	}
	opsH := ops.Handler(ops.Sources{Upstreams: func() any { return rt.UpstreamHealth() }, Gatherer: metrics.Registry})

	b.mode.Store(modeFail)
	waitUntil(t, func() bool { return !endpointHealth(t, rt, b.addr).Healthy })

	// Visible in /debug/upstreams and /metrics.
	rec := httptest.NewRecorder()
	opsH.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/upstreams", nil))
	var shown []upstream.UpstreamHealth
	if err := json.NewDecoder(rec.Body).Decode(&shown); err != nil || len(shown) != 1 || len(shown[0].Endpoints) != 2 {
		t.Fatalf("/debug/upstreams: %v %+v", err, shown)
	}
	rec = httptest.NewRecorder()
	opsH.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	want := `portico_upstream_endpoint_healthy{endpoint="` + b.addr + `",upstream="app"} 0`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %s", want)
	}

	// A swap that changes only the route keeps the upstream, and with it the state.
	if err := rt.Apply(snapshotFromYAML(t, trafficConfig(port, check, "  timeouts: {request: 5s}\n", a, b))); err != nil {
		t.Fatal(err)
	}
	if endpointHealth(t, rt, b.addr).Healthy {
		t.Fatal("health state lost across a swap that left the upstream unchanged")
	}
	b.mode.Store(modeOK)
	waitUntil(t, func() bool { return endpointHealth(t, rt, b.addr).Healthy })
}

func endpointHealth(t *testing.T, rt *proxy.Runtime, addr string) upstream.EndpointHealth {
	t.Helper()
	for _, u := range rt.UpstreamHealth() {
		for _, e := range u.Endpoints {
			if e.Address == addr {
				return e
			}
		}
	}
	t.Fatalf("endpoint %s not found", addr)
	return upstream.EndpointHealth{}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

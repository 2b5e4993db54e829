// Package gatewaytest runs a real Portico data plane for plugin tests: one plaintext
// listener on 127.0.0.1 whose catch-all route carries the given plugins and proxies to
// a test backend.
package gatewaytest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy"
)

// Spec is a plugin name and its JSON config, for Start.
func Spec(name, cfg string) ir.PluginSpec {
	return ir.PluginSpec{Name: name, Config: json.RawMessage(cfg)}
}

// Start serves backend behind a data plane whose only route ("/", any host) runs
// plugins, and returns the gateway's base URL ("http://127.0.0.1:port"). Everything
// stops at the end of the test.
func Start(t testing.TB, backend http.Handler, plugins ...ir.PluginSpec) string {
	t.Helper()
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	rt := proxy.New(proxy.Options{DrainTimeout: 5 * time.Second})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	route := ir.Route{Name: "test", Gateway: "default/http", Plugins: plugins,
		Path:     ir.PathMatch{Type: ir.MatchPrefix, Value: "/"},
		Backends: []ir.Backend{{Upstream: "backend", Weight: 1}}}
	s := &ir.Snapshot{
		Listeners: []ir.Listener{{
			Name: "127.0.0.1:" + strconv.Itoa(port), Address: "127.0.0.1", Port: int32(port),
			Protocol: ir.HTTP, Gateways: []string{"default/http"},
			VirtualHosts: []ir.VirtualHost{{Hostname: "*", Routes: []ir.Route{route}}},
		}},
		Upstreams: []ir.Upstream{{Name: "backend", Protocol: ir.UpstreamHTTP, Algorithm: "round-robin",
			Endpoints: []ir.Endpoint{{Address: strings.TrimPrefix(be.URL, "http://"), Weight: 1}}}},
	}
	s.ComputeVersion()
	if err := rt.Apply(s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// Client returns an HTTP client that neither follows redirects nor asks for (or
// decodes) compressed responses on its own.
func Client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableCompression: true},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

package wasm

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
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

// TestThroughTheDataPlane runs real requests through a proxy.Runtime on loopback with
// the wasm plugin on a route.
func TestThroughTheDataPlane(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Secret", "s")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"note": "secret", "x-wasm": r.Header.Get("X-Wasm"), "path": r.Header.Get("X-Wasm-Path"), "body": string(b),
		})
	}))
	defer up.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	var logs syncBuffer
	rt := proxy.New(proxy.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	}()
	cfg := pathConfig(`,"config":"dp","requestBody":true,"responseBody":true`)
	route := ir.Route{
		Name: "app", Gateway: "default/http", Path: ir.PathMatch{Type: ir.MatchPrefix, Value: "/"},
		Backends: []ir.Backend{{Upstream: "up", Weight: 1}},
		Plugins:  []ir.PluginSpec{{Name: Name, Config: json.RawMessage(cfg)}},
	}
	s := &ir.Snapshot{
		Listeners: []ir.Listener{{
			Name: "127.0.0.1:" + strconv.Itoa(port), Address: "127.0.0.1", Port: int32(port),
			Protocol: ir.HTTP, Gateways: []string{"default/http"},
			VirtualHosts: []ir.VirtualHost{{Hostname: "*", Routes: []ir.Route{route}}},
		}},
		Upstreams: []ir.Upstream{{
			Name: "up", Protocol: ir.UpstreamHTTP, Algorithm: "round-robin",
			Endpoints: []ir.Endpoint{{Address: strings.TrimPrefix(up.URL, "http://"), Weight: 1}},
		}},
	}
	s.ComputeVersion()
	if err := rt.Apply(s); err != nil {
		t.Fatal(err)
	}

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	resp, err := http.Post(base+"/items?q=1", "text/plain", strings.NewReader("shout"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got["x-wasm"] != "dp" || got["path"] != "/items?q=1" || got["body"] != "SHOUT" || got["note"] != "[redacted]" ||
		resp.Header.Get("X-Wasm-Response") != "seen" || resp.Header.Get("X-Secret") != "" {
		t.Fatalf("allowed: %d %v %v", resp.StatusCode, got, resp.Header)
	}

	req, _ := http.NewRequest("GET", base+"/private", nil)
	req.Header.Set("X-Deny", "1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(body) != "denied by wasm" || resp.Header.Get("X-Denied-By") != "wasm" {
		t.Fatalf("denied: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if !strings.Contains(logs.String(), `msg="request POST /items?q=1"`) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

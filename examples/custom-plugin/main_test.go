package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestCustomBinary builds the custom binary with go build, runs it with a route that
// uses deny-path, and sends real requests to it (loopback only).
func TestCustomBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "portico-custom")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	defer upstream.Close()

	port, ops := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: app}
spec:
  endpoints: [{address: %q}]
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: app}
spec:
  backends: [{upstream: app}]
  plugins: [{name: deny-path, config: {prefixes: [/admin], tag: custom}}]
`, port, strings.TrimPrefix(upstream.URL, "http://"))
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd := exec.Command(bin, "proxy", "--config", cfgPath, "--ops-addr", fmt.Sprintf("127.0.0.1:%d", ops), "--access-log", "off")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("portico output:\n%s", logs.String())
		}
	}()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", ops))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("portico not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	get := func(path string) (int, http.Header, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	if code, h, body := get("/hello"); code != 200 || body != "upstream saw /hello" || h.Get("X-Deny-Path") != "custom" {
		t.Fatalf("/hello: %d %q %v", code, body, h)
	}
	if code, _, body := get("/admin/x"); code != 403 || !strings.Contains(body, "path_denied") {
		t.Fatalf("/admin/x: %d %q", code, body)
	}
}

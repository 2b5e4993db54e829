package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"portico.dev/portico/internal/proxy"
)

// TestDesignPluginExample runs DESIGN.md's plugins-and-consumers example through the
// file-source pipeline (parse, translate, data plane): key-auth on the default `apikey`
// header, and a per-consumer rate limit of 5 requests a minute.
func TestDesignPluginExample(t *testing.T) {
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	cfg := fmt.Sprintf(`apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, port: %d, protocol: HTTP, address: 127.0.0.1}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: echo}
spec:
  endpoints: [{address: %q}]
---
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: alice}
spec:
  credentials: [{type: key-auth, key: alice-secret-key}]
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: private}
spec:
  gateways: [default]
  matches: [{path: {type: PathPrefix, value: /private}}]
  backends: [{upstream: echo}]
  plugins:
    - name: key-auth
    - name: rate-limit
      config: {requests: 5, window: 1m, key: consumer}
`, port, backend)
	snap := snapshotFromYAML(t, cfg)
	for _, c := range snap.Consumers {
		for _, cred := range c.Credentials {
			if _, ok := cred.Fields["key"]; ok || cred.Fields["keyHash"] == "" {
				t.Fatalf("the IR must carry only the key's hash: %+v", cred.Fields)
			}
		}
	}
	rt := proxy.New(proxy.Options{})
	defer rt.Shutdown(context.Background())
	if err := rt.Apply(snap); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/private/x", port)
	call := func(key string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if key != "" {
			req.Header.Set("apikey", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := call(""); r.StatusCode != 401 {
		t.Fatalf("no key: %d", r.StatusCode)
	}
	if r := call("wrong-key-123"); r.StatusCode != 401 {
		t.Fatalf("wrong key: %d", r.StatusCode)
	}
	for i := 1; i <= 5; i++ {
		r := call("alice-secret-key")
		if r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
		if got, want := r.Header.Get("RateLimit-Remaining"), fmt.Sprint(5-i); got != want {
			t.Fatalf("request %d: RateLimit-Remaining %q, want %q", i, got, want)
		}
	}
	r := call("alice-secret-key")
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("6th request: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// TestBodySizeLimitOnChunkedBody: a chunked body larger than the body-size limit is
// refused with 413 while it streams upstream, not reported as an upstream failure.
func TestBodySizeLimitOnChunkedBody(t *testing.T) {
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	cfg := basicConfig(port, backend, "/") + "  plugins: [{name: body-size, config: {max: 1024}}]\n"
	rt := proxy.New(proxy.Options{})
	defer rt.Shutdown(context.Background())
	if err := rt.Apply(snapshotFromYAML(t, cfg)); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/upload", port)
	for _, tc := range []struct {
		size int
		want int
	}{{512, 200}, {64 << 10, 413}} {
		// An io.Reader of unknown length makes the client send it chunked.
		body := io.MultiReader(strings.NewReader(strings.Repeat("x", tc.size)))
		resp, err := http.Post(url, "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("chunked body of %d bytes: %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}

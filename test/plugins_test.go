package test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/echo"
	"portico.dev/portico/internal/ir"
	_ "portico.dev/portico/internal/plugins/all"
	"portico.dev/portico/internal/proxy"
)

// Translation does not fill ir.Route.Plugins and ir.Snapshot.Consumers yet, so these
// snapshots are written by hand in the shape translation will produce.

func pluginSpec(name, cfg string) ir.PluginSpec {
	return ir.PluginSpec{Name: name, Config: json.RawMessage(cfg)}
}

func keyConsumer(name, key string, groups []string, plugins ...ir.PluginSpec) ir.Consumer {
	sum := sha256.Sum256([]byte(key))
	return ir.Consumer{Name: name, Groups: groups, Plugins: plugins, Credentials: []ir.Credential{
		{Type: "key-auth", Fields: map[string]string{"keyHash": hex.EncodeToString(sum[:])}}}}
}

func pluginRoute(name, prefix string, plugins ...ir.PluginSpec) ir.Route {
	return ir.Route{
		Name: name, Gateway: "default", Path: ir.PathMatch{Type: ir.MatchPrefix, Value: prefix},
		Backends: []ir.Backend{{Upstream: "echo", Weight: 1}}, Plugins: plugins,
	}
}

// pluginSnapshot is one listener on port, the echo upstream, routes and consumers.
func pluginSnapshot(port int, backend string, consumers []ir.Consumer, routes ...ir.Route) *ir.Snapshot {
	s := &ir.Snapshot{
		Listeners: []ir.Listener{{
			Name: fmt.Sprintf("127.0.0.1:%d", port), Address: "127.0.0.1", Port: int32(port),
			Protocol: ir.HTTP, Gateways: []string{"default"},
			VirtualHosts: []ir.VirtualHost{{Hostname: "*", Routes: routes}},
		}},
		Upstreams: []ir.Upstream{{Name: "echo", Protocol: ir.UpstreamHTTP, Algorithm: "round-robin",
			Endpoints: []ir.Endpoint{{Address: backend, Weight: 1}}}},
		Consumers: consumers,
	}
	s.ComputeVersion()
	return s
}

type answer struct {
	status int
	header http.Header
	body   string
	echo   echo.Reply
}

func call(t testing.TB, url string, hdr ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.Header.Get("X-Echo-Server") != "" {
		if err := json.Unmarshal(b, &a.echo); err != nil {
			t.Fatalf("echo body %q: %v", b, err)
		}
	}
	return a
}

func errorOf(t testing.TB, a answer) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return e.Error.Code + ": " + e.Error.Message
}

func pluginRoutes() []ir.Route {
	return []ir.Route{
		pluginRoute("header", "/header", pluginSpec("key-auth", `{}`)),
		pluginRoute("query", "/query", pluginSpec("key-auth", `{"header":"X-Key","query":"api_key"}`)),
		pluginRoute("anon", "/anon", pluginSpec("key-auth", `{"anonymous":"guest"}`),
			pluginSpec("acl", `{"allow":["public","staff"]}`)),
		pluginRoute("staff", "/staff", pluginSpec("key-auth", `{}`), pluginSpec("acl", `{"allow":["staff"]}`)),
		pluginRoute("nobanned", "/nobanned", pluginSpec("key-auth", `{}`), pluginSpec("acl", `{"deny":["banned"]}`)),
		pluginRoute("admin", "/admin", pluginSpec("key-auth", `{}`), pluginSpec("acl", `{"allow":["admins"]}`)),
		pluginRoute("acl-only", "/acl-only", pluginSpec("acl", `{"allow":["staff"]}`)),
		pluginRoute("open", "/"),
	}
}

func pluginConsumers() []ir.Consumer {
	return []ir.Consumer{
		// alice's own acl replaces the route's once key-auth has identified her.
		keyConsumer("alice", "alice-key", []string{"staff"}, pluginSpec("acl", `{"allow":["staff"]}`)),
		keyConsumer("bob", "bob-key", []string{"staff"}),
		keyConsumer("eve", "eve-key", []string{"banned"}),
		{Name: "guest", Groups: []string{"public"}},
	}
}

func TestPluginsEndToEnd(t *testing.T) {
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	rt := proxy.New(proxy.Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	if err := rt.Apply(pluginSnapshot(port, backend, pluginConsumers(), pluginRoutes()...)); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/open", 200)

	t.Run("header", func(t *testing.T) {
		a := call(t, base+"/header/x", "apikey", "bob-key", "X-Consumer-Username", "alice")
		if a.status != 200 || a.echo.Headers["Apikey"] != nil || strings.Join(a.echo.Headers["X-Consumer-Username"], ",") != "bob" {
			t.Fatalf("%d %v", a.status, a.echo.Headers)
		}
		a = call(t, base+"/header/x")
		if a.status != 401 || errorOf(t, a) != "unauthorized: missing API key" || a.header.Get("WWW-Authenticate") != `Key realm="portico"` {
			t.Fatalf("missing: %d %v %s", a.status, a.header, a.body)
		}
		if a = call(t, base+"/header/x", "apikey", "guess"); a.status != 401 || errorOf(t, a) != "unauthorized: invalid API key" {
			t.Fatalf("invalid: %d %s", a.status, a.body)
		}
	})
	t.Run("query", func(t *testing.T) {
		a := call(t, base+"/query?x=1&api_key=bob-key&y=2")
		if a.status != 200 || a.echo.Query != "x=1&y=2" || a.echo.Headers["X-Consumer-Username"][0] != "bob" {
			t.Fatalf("%d query %q %v", a.status, a.echo.Query, a.echo.Headers)
		}
		if a = call(t, base+"/query", "X-Key", "alice-key"); a.status != 200 || a.echo.Headers["X-Key"] != nil {
			t.Fatalf("header on query route: %d %v", a.status, a.echo.Headers)
		}
		if a = call(t, base+"/query?api_key=nope"); a.status != 401 {
			t.Fatalf("bad query key: %d", a.status)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		a := call(t, base+"/anon")
		if a.status != 200 || a.echo.Headers["X-Consumer-Username"][0] != "guest" || a.echo.Headers["X-Anonymous-Consumer"][0] != "true" {
			t.Fatalf("%d %v", a.status, a.echo.Headers)
		}
		if a = call(t, base+"/anon", "apikey", "eve-key"); a.status != 403 || errorOf(t, a) != "forbidden: you are not allowed to use this route" {
			t.Fatalf("eve on anon: %d %s", a.status, a.body)
		}
	})
	t.Run("acl", func(t *testing.T) {
		for _, tc := range []struct {
			path, key string
			want      int
		}{
			{"/staff", "bob-key", 200}, {"/staff", "eve-key", 403}, {"/staff", "", 401},
			{"/nobanned", "bob-key", 200}, {"/nobanned", "eve-key", 403},
			{"/acl-only", "", 401}, // no authentication plugin: nobody identified
		} {
			var a answer
			if tc.key == "" {
				a = call(t, base+tc.path)
			} else {
				a = call(t, base+tc.path, "apikey", tc.key)
			}
			if a.status != tc.want {
				t.Fatalf("%s with %q: %d, want %d (%s)", tc.path, tc.key, a.status, tc.want, a.body)
			}
		}
	})
	t.Run("consumer override", func(t *testing.T) {
		if a := call(t, base+"/admin", "apikey", "alice-key"); a.status != 200 || a.echo.Headers["X-Consumer-Username"][0] != "alice" {
			t.Fatalf("alice (own acl): %d %s", a.status, a.body)
		}
		if a := call(t, base+"/admin", "apikey", "bob-key"); a.status != 403 {
			t.Fatalf("bob (route acl): %d %s", a.status, a.body)
		}
	})
}

// TestPluginsReload swaps snapshots (keys rotated, consumers added and removed)
// under load: no request fails, and each swap's consumers take effect.
func TestPluginsReload(t *testing.T) {
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	rt := proxy.New(proxy.Options{DrainTimeout: 5 * time.Second})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	snap := func(i int) *ir.Snapshot {
		cs := pluginConsumers()
		cs = append(cs, keyConsumer("rotating", fmt.Sprintf("key-%d", i), []string{"staff"}))
		return pluginSnapshot(port, backend, cs, pluginRoutes()...)
	}
	if err := rt.Apply(snap(0)); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/open", 200)

	var stop atomic.Bool
	var failures atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for !stop.Load() {
				req, _ := http.NewRequest(http.MethodGet, base+"/staff", nil)
				req.Header.Set("apikey", "bob-key")
				resp, err := client.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 40; i++ {
		if err := rt.Apply(snap(i)); err != nil {
			t.Fatal(err)
		}
		if a := call(t, base+"/staff", "apikey", fmt.Sprintf("key-%d", i)); a.status != 200 {
			t.Fatalf("swap %d: new key refused: %d", i, a.status)
		}
		if a := call(t, base+"/staff", "apikey", fmt.Sprintf("key-%d", i-1)); a.status != 401 {
			t.Fatalf("swap %d: old key accepted: %d", i, a.status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d requests failed during reloads", n)
	}
	// A snapshot whose plugins cannot be built is refused whole; the last one serves.
	bad := pluginSnapshot(port, backend, pluginConsumers(), pluginRoute("open", "/", pluginSpec("acl", `{}`)))
	if err := rt.Apply(bad); err == nil || !strings.Contains(err.Error(), `"open"`) || !strings.Contains(err.Error(), `"acl"`) {
		t.Fatalf("bad snapshot: %v", err)
	}
	if a := call(t, base+"/staff", "apikey", "key-40"); a.status != 200 {
		t.Fatalf("after refused snapshot: %d", a.status)
	}
}

package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy"
)

// variant renders config number i: the same stable route each time, while the rest
// changes — a per-variant upstream and route, endpoint sets and weights, a route that
// comes and goes, and a second listener that comes and goes.
func variant(i, port, port2 int, backends []string) string {
	var b strings.Builder
	listeners := fmt.Sprintf("{name: http, port: %d, protocol: HTTP, address: 127.0.0.1}", port)
	if i%2 == 1 {
		listeners += fmt.Sprintf(", {name: extra, port: %d, protocol: HTTP, address: 127.0.0.1}", port2)
	}
	fmt.Fprintf(&b, "apiVersion: portico.dev/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n  listeners: [%s]\n", listeners)
	stable := []string{backends[0], backends[1]}
	switch i % 3 {
	case 1:
		stable = backends
	case 2:
		stable = []string{backends[2], backends[0]}
	}
	var eps []string
	for j, a := range stable {
		eps = append(eps, fmt.Sprintf("{address: %q, weight: %d}", a, 1+(i+j)%4))
	}
	fmt.Fprintf(&b, "---\napiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: stable}\nspec:\n  endpoints: [%s]\n", strings.Join(eps, ", "))
	fmt.Fprintf(&b, "---\napiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: extra-%d}\nspec:\n  endpoints: [{address: %q}]\n", i, backends[i%3])
	b.WriteString("---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: stable}\nspec:\n  matches: [{path: {type: PathPrefix, value: /stable}}]\n  backends: [{upstream: stable}]\n")
	fmt.Fprintf(&b, "---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: v%d}\nspec:\n  matches: [{path: {type: PathPrefix, value: /v}}]\n  filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Variant, value: \"%d\"}]}}]\n  backends: [{upstream: extra-%d}]\n", i, i, i)
	if i%2 == 0 {
		b.WriteString("---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: even}\nspec:\n  matches: [{path: {type: Exact, value: /even}}]\n  backends: [{upstream: stable}]\n")
	}
	return b.String()
}

// TestHitlessReload swaps the configuration 150 times while a bounded load runs over
// keep-alive and fresh connections, and requires that not one request fails.
func TestHitlessReload(t *testing.T) {
	backends := startEcho(t, 3)
	port, port2 := freePort(t), freePort(t)
	const swaps = 150
	snaps := make([]*ir.Snapshot, swaps+1)
	for i := range snaps {
		snaps[i] = snapshotFromYAML(t, variant(i, port, port2, backends))
	}

	rt := proxy.New(proxy.Options{})
	defer rt.Shutdown(context.Background())
	if err := rt.Apply(snaps[0]); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/stable", 200)

	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	deadline := time.Now().Add(60 * time.Second) // bounded even if swaps stall
	var wg sync.WaitGroup
	load := func(client *http.Client, path string) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if time.Now().After(deadline) {
				return
			}
			resp, err := client.Get(base + path)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				failed.Add(1)
				failMu.Lock()
				if len(failures) < 10 {
					failures = append(failures, path+": "+err.Error())
				}
				failMu.Unlock()
				continue
			}
			ok.Add(1)
		}
	}
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go load(keepAlive, []string{"/stable", "/v/x"}[i%2])
	}
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go load(fresh, "/stable/fresh")
	}

	var slowest time.Duration
	for i := 1; i <= swaps; i++ {
		time.Sleep(15 * time.Millisecond)
		start := time.Now()
		if err := rt.Apply(snaps[i]); err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()

	t.Logf("%d swaps, %d requests ok, %d failed, slowest swap %v", swaps, ok.Load(), failed.Load(), slowest)
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed across reloads, e.g. %v", failed.Load(), failures)
	}
	if ok.Load() < 500 {
		t.Fatalf("only %d requests ran: the load did not overlap the swaps", ok.Load())
	}
	if got := rt.Snapshot().Version; got != snaps[swaps].Version {
		t.Fatalf("active version %s, want %s", got, snaps[swaps].Version)
	}
}

// TestSwapDoesNotWaitForLongLivedRequests holds a slow streaming response open through
// the proxy, swaps to a config without its route and upstream, and requires that the
// swap returns at once and the stream still completes.
func TestSwapDoesNotWaitForLongLivedRequests(t *testing.T) {
	release := make(chan struct{})
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first;"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("last"))
	})}
	slowAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ln := listen(t, slowAddr)
	go slow.Serve(ln)
	defer slow.Close()
	backends := startEcho(t, 1)

	port := freePort(t)
	cfg := func(withSlow bool) string {
		s := fmt.Sprintf("apiVersion: portico.dev/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n  listeners: [{name: http, port: %d, protocol: HTTP, address: 127.0.0.1}]\n", port)
		s += fmt.Sprintf("---\napiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: echo}\nspec:\n  endpoints: [{address: %q}]\n", backends[0])
		s += "---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: echo}\nspec:\n  matches: [{path: {type: PathPrefix, value: /echo}}]\n  backends: [{upstream: echo}]\n"
		if withSlow {
			s += fmt.Sprintf("---\napiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: slow}\nspec:\n  endpoints: [{address: %q}]\n", slowAddr)
			s += "---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: slow}\nspec:\n  matches: [{path: {type: PathPrefix, value: /slow}}]\n  backends: [{upstream: slow}]\n"
		}
		return s
	}
	rt := proxy.New(proxy.Options{})
	defer rt.Shutdown(context.Background())
	if err := rt.Apply(snapshotFromYAML(t, cfg(true))); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/echo", 200)

	resp, err := http.Get(base + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := rt.Apply(snapshotFromYAML(t, cfg(false))); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("swap took %v while a long request was open", took)
	}
	waitHTTP(t, base+"/slow", 404) // the new config no longer routes /slow
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "last" {
		t.Fatalf("long request after swap: %q, %v", rest, err)
	}
}

package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"portico.dev/portico/internal/plugin"
)

// guestPath is the test plugin (testdata/guest), built once by TestMain.
var guestPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasm-guest")
	if err != nil {
		panic(err)
	}
	guestPath = filepath.Join(dir, "guest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", guestPath, "./testdata/guest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test module: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func chain(t testing.TB, cfg string, logs io.Writer) *plugin.Chain {
	t.Helper()
	env := &plugin.Env{Logger: slog.New(slog.NewTextHandler(logs, nil))}
	ch, err := plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(cfg)}}, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch.Close)
	return ch
}

func pathConfig(extra string) string {
	b, _ := json.Marshal(guestPath)
	return `{"path":` + string(b) + extra + `}`
}

func newCtx(method, target string, body string, hdr ...string) *plugin.Context {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return &plugin.Context{Request: r, ClientIP: "192.0.2.1", Route: "r1"}
}

// roundTrip runs the request phases, a fake upstream response, the response phases
// and the log phase, as the data plane does.
func roundTrip(ch *plugin.Chain, c *plugin.Context) (*plugin.Reply, error) {
	defer ch.Log(c)
	if err := ch.Run(plugin.PhaseAccess, c); err != nil {
		var rep *plugin.Reply
		if errors.As(err, &rep) {
			return rep, nil
		}
		return nil, err
	}
	c.Status, c.Header = 200, http.Header{"X-Secret": {"s"}, "Content-Type": {"text/plain"}}
	return nil, ch.Run(plugin.PhaseResponseHeaders, c)
}

func TestHeadersPropertiesLogsAndResponse(t *testing.T) {
	var logs syncBuffer
	ch := chain(t, pathConfig(`,"config":"tag-1"`), &logs)
	c := newCtx("GET", "/hello?x=1", "", "X-Replace", "old", "X-Remove", "gone")
	rep, err := roundTrip(ch, c)
	if err != nil || rep != nil {
		t.Fatalf("reply %v err %v", rep, err)
	}
	h := c.Request.Header
	for k, want := range map[string]string{
		"X-Wasm": "tag-1", "X-Wasm-Path": "/hello?x=1", "X-Replace": "old-replaced",
		"X-Remove": "", "X-Wasm-Source": c.Request.RemoteAddr,
		// 4 pseudo-headers + X-Replace + X-Remove + the two X-Wasm* added so far.
		"X-Wasm-Pairs": "8",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("request header %s = %q, want %q", k, got, want)
		}
	}
	if c.Header.Get("X-Wasm-Response") != "seen" || c.Header.Get("X-Secret") != "" {
		t.Errorf("response headers %v", c.Header)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="configured wasm with tag-1"`) || !strings.Contains(out, `msg="request GET /hello?x=1"`) {
		t.Errorf("logs:\n%s", out)
	}
}

func TestLocalResponse(t *testing.T) {
	ch := chain(t, pathConfig(``), io.Discard)
	c := newCtx("GET", "/private", "", "X-Deny", "1")
	rep, err := roundTrip(ch, c)
	if err != nil || rep == nil {
		t.Fatalf("reply %v err %v", rep, err)
	}
	if rep.Status != 403 || string(rep.Body) != "denied by wasm" || rep.Header.Get("X-Denied-By") != "wasm" {
		t.Fatalf("reply %d %q %v", rep.Status, rep.Body, rep.Header)
	}
}

func TestRequestBody(t *testing.T) {
	ch := chain(t, pathConfig(`,"requestBody":true`), io.Discard)
	c := newCtx("POST", "/up", "hello body")
	if rep, err := roundTrip(ch, c); err != nil || rep != nil {
		t.Fatalf("reply %v err %v", rep, err)
	}
	b, _ := io.ReadAll(c.Request.Body)
	if string(b) != "HELLO BODY" || c.Request.ContentLength != 10 {
		t.Fatalf("body %q (%d)", b, c.Request.ContentLength)
	}
	ch = chain(t, pathConfig(`,"requestBody":true,"maxBodyBytes":4`), io.Discard)
	if rep, _ := roundTrip(ch, newCtx("POST", "/up", "too long")); rep == nil || rep.Status != 413 {
		t.Fatalf("reply %v", rep)
	}
}

// bodySink is the innermost body writer of a test.
type bodySink struct {
	bytes.Buffer
	closed bool
}

func (s *bodySink) Flush() error { return nil }
func (s *bodySink) Close() error { s.closed = true; return nil }

func TestResponseBody(t *testing.T) {
	ch := chain(t, pathConfig(`,"responseBody":true,"maxBodyBytes":64`), io.Discard)
	for _, tc := range []struct{ in, want string }{
		{"a secret here", "a [redacted] here"},
		{strings.Repeat("secret ", 20), strings.Repeat("secret ", 20)}, // over the limit: unfiltered
	} {
		c := newCtx("GET", "/", "")
		if err := ch.Run(plugin.PhaseAccess, c); err != nil {
			t.Fatal(err)
		}
		c.Status, c.Header = 200, http.Header{}
		if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
			t.Fatal(err)
		}
		sink := &bodySink{}
		w := ch.WrapBody(c, sink)
		for i := 0; i < len(tc.in); i += 5 {
			_, _ = w.Write([]byte(tc.in[i:min(i+5, len(tc.in))]))
		}
		_ = w.Close()
		ch.Log(c)
		if sink.String() != tc.want || !sink.closed {
			t.Errorf("body %q, want %q", sink.String(), tc.want)
		}
	}
}

func TestModuleBytesStubsAndSharedCompilation(t *testing.T) {
	code, err := os.ReadFile(guestPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"module": code, "config": map[string]int{"a": 1}})
	ch1 := chain(t, string(cfg), io.Discard)
	ch2 := chain(t, pathConfig(``), io.Discard)
	c := newCtx("GET", "/", "")
	if _, err := roundTrip(ch1, c); err != nil || c.Request.Header.Get("X-Wasm") != `{"a":1}` {
		t.Fatalf("err %v header %q", err, c.Request.Header.Get("X-Wasm"))
	}
	enginesMu.Lock()
	n := len(engines)
	var stubbed []string
	for _, e := range engines {
		stubbed = e.stubbed
	}
	enginesMu.Unlock()
	if n != 1 {
		t.Errorf("%d engines for one module", n)
	}
	// The guest's proxy_on_vm_start fails unless its unimplemented import got the stub.
	if !strings.Contains(strings.Join(stubbed, ","), "proxy_define_metric") {
		t.Errorf("stubbed %v", stubbed)
	}
	_ = ch2
}

// TestTrapDiscardsTheInstance: a trapping module is a 500 (or passes with failOpen),
// and the broken instance is replaced for later requests.
func TestTrapDiscardsTheInstance(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		ch := chain(t, pathConfig(fmt.Sprintf(`,"poolSize":1,"failOpen":%v`, failOpen)), io.Discard)
		rep, err := roundTrip(ch, newCtx("GET", "/", "", "X-Panic", "1"))
		if rep != nil || (err == nil) != failOpen {
			t.Fatalf("failOpen %v: reply %v err %v", failOpen, rep, err)
		}
		c := newCtx("GET", "/after", "")
		if _, err := roundTrip(ch, c); err != nil || c.Request.Header.Get("X-Wasm-Path") != "/after" {
			t.Fatalf("after the trap: %v %v", err, c.Request.Header)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{}`:                               "module",
		`{"module":"AGFzbQ==","path":"x"}`: "path",
		`{"module":"aGVsbG8="}`:            "module",
		`{"path":"x","poolSize":-1}`:       "poolSize",
		`{"path":"x","config":{"a":}}`:     "",
		`{"path":"x","maxBodyBytes":-1}`:   "maxBodyBytes",
		`{"path":"x","bogus":true}`:        "",
		`{"path":"/nonexistent/x.wasm"}`:   "build",
	} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		if field == "build" {
			if err == nil {
				_, err = plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(cfg)}}, &plugin.Env{})
			}
			if err == nil {
				t.Errorf("%s: no error", cfg)
			}
			continue
		}
		var fe *plugin.FieldError
		if err == nil || (field != "" && (!errors.As(err, &fe) || fe.Field != field)) {
			t.Errorf("%s: %v, want field %q", cfg, err, field)
		}
	}
}

// TestConcurrentRequests shares a pool of 2 instances between many requests.
func TestConcurrentRequests(t *testing.T) {
	ch := chain(t, pathConfig(`,"poolSize":2,"config":"c"`), io.Discard)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newCtx("GET", fmt.Sprintf("/r/%d", i), "")
			if _, err := roundTrip(ch, c); err != nil {
				errs <- err
			} else if got := c.Request.Header.Get("X-Wasm-Path"); got != fmt.Sprintf("/r/%d", i) {
				errs <- fmt.Errorf("request %d saw %q", i, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkRequestHeaders measures one request through the plugin: context creation,
// proxy_on_request_headers (two properties, a log line, five header calls),
// proxy_on_response_headers and the log phase.
func BenchmarkRequestHeaders(b *testing.B) {
	ch := chain(b, pathConfig(`,"config":"c"`), io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		c := newCtx("GET", "/bench", "")
		if _, err := roundTrip(ch, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExportCall measures one bare host→guest call (proxy_on_done), the floor of
// any callback with this (Go-built) guest.
func BenchmarkExportCall(b *testing.B) {
	cfg, err := plugin.DecodeConfig(Name, json.RawMessage(pathConfig(``)))
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(cfg.(*Config), &plugin.Env{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	v, err := p.pool.get(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer p.pool.put(v)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.call(exDone, 2); err != nil {
			b.Fatal(err)
		}
	}
}

package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/plugin"
	_ "portico.dev/portico/internal/plugins/acl"
	_ "portico.dev/portico/internal/plugins/keyauth"
	_ "portico.dev/portico/internal/plugins/ratelimit"
)

// probe is a test plugin running in every phase, driven by its config.
type probeConfig struct {
	Tag     string `json:"tag"`
	Upper   bool   `json:"upper,omitempty"`   // uppercase the response body
	FailIn  string `json:"failIn,omitempty"`  // phase name returning a plain error
	ReplyIn string `json:"replyIn,omitempty"` // phase name answering 418
	Status  int    `json:"status,omitempty"`  // response status to set
	Hold    bool   `json:"hold,omitempty"`    // Access waits on probeGate
	BadCfg  bool   `json:"badCfg,omitempty"`  // New fails
}

type probe struct{ cfg *probeConfig }

var (
	probeMu     sync.Mutex
	probeClosed = map[string]int{}
	probeLogged = map[string][]string{} // tag → "status consumer closed?" per request
	probeGate   = make(chan struct{})
	probeHeld   = make(chan struct{}, 1)
)

func (p *probe) step(phase string) error {
	switch phase {
	case p.cfg.FailIn:
		return errors.New("probe exploded in " + phase)
	case p.cfg.ReplyIn:
		return plugin.JSONError(http.StatusTeapot, "probe", "probe replied in "+phase)
	}
	return nil
}

func (p *probe) Access(c *plugin.Context) error {
	if p.cfg.Hold {
		probeHeld <- struct{}{}
		<-probeGate
	}
	return p.step("access")
}

func (p *probe) UpstreamRequest(c *plugin.Context) error {
	c.Request.Header.Set("X-Probe-"+p.cfg.Tag, "upstream")
	return p.step("upstream-request")
}

func (p *probe) ResponseHeaders(c *plugin.Context) error {
	c.Header.Set("X-Probe-"+p.cfg.Tag, "status="+itoa(c.Status))
	if p.cfg.Status != 0 {
		c.Status = p.cfg.Status
	}
	return p.step("response-headers")
}

func (p *probe) WrapBody(c *plugin.Context, w plugin.BodyWriter) plugin.BodyWriter {
	if !p.cfg.Upper {
		return w
	}
	return &upperWriter{w}
}

func (p *probe) Log(c *plugin.Context) {
	name := "-"
	if c.Consumer != nil {
		name = c.Consumer.Name
	}
	probeMu.Lock()
	defer probeMu.Unlock()
	probeLogged[p.cfg.Tag] = append(probeLogged[p.cfg.Tag], itoa(c.Status)+" "+name+" closed="+itoa(probeClosed[p.cfg.Tag]))
}

func (p *probe) Close() error {
	probeMu.Lock()
	defer probeMu.Unlock()
	probeClosed[p.cfg.Tag]++
	return nil
}

type upperWriter struct{ w plugin.BodyWriter }

func (u *upperWriter) Write(b []byte) (int, error) {
	if _, err := u.w.Write(bytes.ToUpper(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
func (u *upperWriter) Flush() error { return u.w.Flush() }
func (u *upperWriter) Close() error { _, err := u.w.Write([]byte("\nEND")); return err }

func init() {
	plugin.Register(&plugin.Definition{
		Name:      "test-probe",
		NewConfig: func() any { return &probeConfig{} },
		New: func(cfg any, _ *plugin.Env) (any, error) {
			c := cfg.(*probeConfig)
			if c.BadCfg {
				return nil, errors.New("bad probe")
			}
			return &probe{cfg: c}, nil
		},
	})
}

func probeLog(tag string) []string {
	probeMu.Lock()
	defer probeMu.Unlock()
	return append([]string(nil), probeLogged[tag]...)
}

func probeClosedCount(tag string) int {
	probeMu.Lock()
	defer probeMu.Unlock()
	return probeClosed[tag]
}

func pspec(name, cfg string) ir.PluginSpec {
	return ir.PluginSpec{Name: name, Config: json.RawMessage(cfg)}
}

func keyHash(key string) string { s := sha256.Sum256([]byte(key)); return hex.EncodeToString(s[:]) }

func keyConsumer(name, key string, groups ...string) ir.Consumer {
	return ir.Consumer{Name: name, Groups: groups, Credentials: []ir.Credential{
		{Type: "key-auth", Fields: map[string]string{"keyHash": keyHash(key)}}}}
}

func withPlugins(r ir.Route, ps ...ir.PluginSpec) ir.Route { r.Plugins = ps; return r }

func TestPluginsKeyAuthAndLog(t *testing.T) {
	e := newEnv(t)
	be := echoBackend(t, "b1")
	port := freePort(t)
	s := simpleSnapshot(port, []ir.Upstream{upstreamFor("up", addrOf(be))},
		withPlugins(prefixRoute("private", "/private", "up"), pspec("key-auth", `{}`)),
		prefixRoute("open", "/", "up"))
	s.Consumers = []ir.Consumer{keyConsumer("alice", "alice-key")}
	e.apply(t, s)
	c := newClient()

	r := get(t, c, base(port)+"/private/x", "apikey", "alice-key", "X-Consumer-Username", "mallory")
	if r.status != 200 || r.echo.Header["Apikey"] != nil || r.echo.Header["X-Consumer-Username"][0] != "alice" ||
		len(r.echo.Header["X-Consumer-Username"]) != 1 {
		t.Fatalf("authenticated: %d %+v", r.status, r.echo.Header)
	}
	r = get(t, c, base(port)+"/private/x")
	if r.status != 401 || r.header.Get("Www-Authenticate") != `Key realm="portico"` ||
		strings.TrimSpace(string(r.body)) != `{"error":{"code":"unauthorized","message":"missing API key"}}` ||
		r.header.Get("X-Request-Id") == "" || r.header.Get("Content-Length") != itoa(len(r.body)) {
		t.Fatalf("missing key: %d %v %s", r.status, r.header, r.body)
	}
	r = get(t, c, base(port)+"/private/x", "apikey", "nope")
	if r.status != 401 || !strings.Contains(string(r.body), "invalid API key") {
		t.Fatalf("wrong key: %d %s", r.status, r.body)
	}
	// A route without plugins is untouched: the client's header goes through.
	r = get(t, c, base(port)+"/open", "X-Consumer-Username", "mallory")
	if r.echo.Header["X-Consumer-Username"][0] != "mallory" {
		t.Fatalf("open route: %+v", r.echo.Header)
	}
	_ = e.alog.Close()
	logs := e.logs.String()
	if !strings.Contains(logs, `"route":"private","consumer":"alice"`) || !strings.Contains(logs, `"status":401`) {
		t.Fatalf("access log:\n%s", logs)
	}
	if strings.Count(logs, `"consumer"`) != 1 {
		t.Fatalf("consumer logged for unidentified requests:\n%s", logs)
	}
}

func TestPluginsResponsePhases(t *testing.T) {
	e := newEnv(t)
	be := echoBackend(t, "b1")
	port := freePort(t)
	s := simpleSnapshot(port, []ir.Upstream{upstreamFor("up", addrOf(be))},
		withPlugins(prefixRoute("upper", "/upper", "up"), pspec("test-probe", `{"tag":"up","upper":true,"status":203}`)),
		withPlugins(prefixRoute("auth", "/auth", "up"), pspec("key-auth", `{}`), pspec("test-probe", `{"tag":"auth"}`)),
		withPlugins(prefixRoute("boom", "/boom", "up"), pspec("test-probe", `{"tag":"boom","failIn":"access"}`)),
		withPlugins(prefixRoute("swap", "/swap", "up"), pspec("test-probe", `{"tag":"swap","replyIn":"response-headers"}`)),
		withPlugins(prefixRoute("late", "/late", "up"), pspec("test-probe", `{"tag":"late","replyIn":"upstream-request"}`)))
	e.apply(t, s)
	c := newClient()

	resp, err := c.Get(base(port) + "/upper")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := result{status: resp.StatusCode, header: resp.Header, body: body}
	if r.status != 203 || r.header.Get("X-Probe-Up") != "status=200" ||
		(r.header.Get("Content-Length") != "" && r.header.Get("Content-Length") != itoa(len(r.body))) ||
		!strings.Contains(string(r.body), `"BACKEND":"B1"`) || !strings.HasSuffix(string(r.body), "\nEND") {
		t.Fatalf("response phases: %d %v %q", r.status, r.header, r.body)
	}
	if !strings.Contains(string(r.body), "X-PROBE-UP\":[\"UPSTREAM") {
		t.Fatalf("upstream-request phase not seen upstream: %s", r.body)
	}
	// Response phases also run for local replies of earlier phases.
	r = get(t, c, base(port)+"/auth")
	if r.status != 401 || r.header.Get("X-Probe-Auth") != "status=401" {
		t.Fatalf("local reply: %d %v", r.status, r.header)
	}
	r = get(t, c, base(port)+"/boom")
	if r.status != 500 || errorCode(t, r.body) != "internal_error" || strings.Contains(string(r.body), "probe") {
		t.Fatalf("plugin error: %d %s", r.status, r.body)
	}
	if !strings.Contains(e.errs.String(), `test-probe`) {
		t.Fatalf("plugin error not logged with its name: %s", e.errs.String())
	}
	r = get(t, c, base(port)+"/swap")
	if r.status != 418 || !strings.Contains(string(r.body), "probe replied in response-headers") || r.header.Get("X-Backend") != "" {
		t.Fatalf("response-headers reply: %d %v %s", r.status, r.header, r.body)
	}
	r = get(t, c, base(port)+"/late")
	if r.status != 418 {
		t.Fatalf("upstream-request reply: %d %s", r.status, r.body)
	}
	if got := probeLog("up"); len(got) != 1 || got[0] != "203 - closed=0" {
		t.Fatalf("log phase: %q", got)
	}
}

func TestPluginsBuildErrorFailsApply(t *testing.T) {
	e := newEnv(t)
	be := echoBackend(t, "b1")
	port := freePort(t)
	good := simpleSnapshot(port, []ir.Upstream{upstreamFor("up", addrOf(be))},
		withPlugins(prefixRoute("r", "/", "up"), pspec("test-probe", `{"tag":"keep"}`)))
	e.apply(t, good)
	for name, bad := range map[string]ir.PluginSpec{
		"new":     pspec("test-probe", `{"tag":"x","badCfg":true}`),
		"config":  pspec("test-probe", `{"tag":"x","nope":1}`),
		"unknown": pspec("no-such-plugin", `{}`),
	} {
		s := simpleSnapshot(port, []ir.Upstream{upstreamFor("up", addrOf(be))},
			withPlugins(prefixRoute("broken", "/", "up"), bad))
		err := e.rt.Apply(s)
		if err == nil || !strings.Contains(err.Error(), `route "broken"`) || !strings.Contains(err.Error(), bad.Name) {
			t.Fatalf("%s: Apply error %v", name, err)
		}
	}
	s := simpleSnapshot(port, []ir.Upstream{upstreamFor("up", addrOf(be))}, prefixRoute("r", "/", "up"))
	s.Consumers = []ir.Consumer{{Name: "bob", Plugins: []ir.PluginSpec{pspec("test-probe", `{"badCfg":true}`)}}}
	if err := e.rt.Apply(s); err == nil || !strings.Contains(err.Error(), `consumer "bob"`) {
		t.Fatalf("consumer plugin error: %v", err)
	}
	if r := get(t, newClient(), base(port)+"/"); r.status != 200 || r.header.Get("X-Probe-Keep") == "" {
		t.Fatalf("old config not serving: %d %v", r.status, r.header)
	}
	if probeClosedCount("keep") != 0 {
		t.Fatal("live chain closed by a failed Apply")
	}
}

// TestPluginsCloseAfterInFlight replaces a snapshot while a request is inside its
// Access phase: the old chain is closed only after that request has finished.
func TestPluginsCloseAfterInFlight(t *testing.T) {
	e := newEnv(t)
	be := echoBackend(t, "b1")
	port := freePort(t)
	ups := []ir.Upstream{upstreamFor("up", addrOf(be))}
	e.apply(t, simpleSnapshot(port, ups,
		withPlugins(prefixRoute("r", "/", "up"), pspec("test-probe", `{"tag":"old","hold":true}`))))
	done := make(chan result, 1)
	go func() { done <- get(t, newClient(), base(port)+"/") }()
	<-probeHeld
	e.apply(t, simpleSnapshot(port, ups,
		withPlugins(prefixRoute("r", "/", "up"), pspec("test-probe", `{"tag":"new"}`))))
	if r := get(t, newClient(), base(port)+"/"); r.header.Get("X-Probe-New") == "" {
		t.Fatalf("new chain not serving: %v", r.header)
	}
	if n := probeClosedCount("old"); n != 0 {
		t.Fatalf("old chain closed with a request in flight (%d)", n)
	}
	close(probeGate)
	if r := <-done; r.status != 200 || r.header.Get("X-Probe-Old") == "" {
		t.Fatalf("in-flight request: %d %v", r.status, r.header)
	}
	deadline := time.Now().Add(5 * time.Second)
	for probeClosedCount("old") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("old chain never closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := probeLog("old"); len(got) != 1 || got[0] != "200 - closed=0" {
		t.Fatalf("old request logged %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.rt.Shutdown(ctx)
	if probeClosedCount("new") != 1 {
		t.Fatal("Shutdown did not close the live chain")
	}
}

// benchPlugins runs the BenchmarkProxyHTTP1 request through a route with plugins.
func benchPlugins(b *testing.B, plugins []ir.PluginSpec, consumers []ir.Consumer, hdr http.Header) {
	addr := fastBackend(b)
	m := observe.NewMetrics()
	al := observe.NewAccessLog(io.Discard)
	defer al.Close()
	rt := New(Options{Metrics: m, AccessLog: al})
	defer rt.Shutdown(context.Background())

	s := simpleSnapshot(1, []ir.Upstream{upstreamFor("up", addr)},
		benchRoutes(withPlugins(prefixRoute("api", "/api", "up"), plugins...))...)
	s.Consumers = consumers
	hl, _ := benchListener(b, rt, s, m)

	u := &url.URL{Path: "/api/v1/items", RawQuery: "page=2"}
	req := &http.Request{
		Method: "GET", URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: "bench.example", RemoteAddr: "127.0.0.1:40000", Body: http.NoBody,
	}
	w := &benchWriter{h: http.Header{}}
	tmpl := *req
	ua, accept, rid := []string{"bench/1.0"}, []string{"*/*"}, []string{"fixed-request-id"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := req.Header
		clear(h)
		h["User-Agent"] = ua
		h["Accept"] = accept
		h["X-Request-Id"] = rid
		for k, v := range hdr {
			h[k] = v
		}
		*req = tmpl
		req.Header = h
		u.Path = "/api/v1/items"
		clear(w.h)
		w.status, w.n = 0, 0
		hl.ServeHTTP(w, req)
		if w.status != 200 || w.n != 13 {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

// BenchmarkProxyKeyAuth is BenchmarkProxyHTTP1 with key-auth on the route (key in
// the default header, hidden from the upstream); the difference is key-auth's cost.
func BenchmarkProxyKeyAuth(b *testing.B) {
	consumers := []ir.Consumer{keyConsumer("alice", "alice-secret-key", "staff")}
	for i := 0; i < 1000; i++ {
		consumers = append(consumers, keyConsumer("c"+itoa(i), "key-"+itoa(i)))
	}
	benchPlugins(b, []ir.PluginSpec{pspec("key-auth", `{}`)}, consumers,
		http.Header{"Apikey": {"alice-secret-key"}})
}

// BenchmarkProxyKeyAuthACL adds an acl allow list after key-auth.
func BenchmarkProxyKeyAuthACL(b *testing.B) {
	consumers := []ir.Consumer{keyConsumer("alice", "alice-secret-key", "staff")}
	benchPlugins(b, []ir.PluginSpec{pspec("key-auth", `{}`), pspec("acl", `{"allow":["staff"]}`)}, consumers,
		http.Header{"Apikey": {"alice-secret-key"}})
}

// BenchmarkPluginOverheadKeyAuth measures only what a key-auth route adds to a
// request: the generation reference, the pooled context, the Rewrite, Access and
// UpstreamRequest phases, the response-phase writer and the Log phase.
func BenchmarkPluginOverheadKeyAuth(b *testing.B) {
	benchPluginOverhead(b, pspec("key-auth", `{}`))
}

// BenchmarkPluginOverheadKeyAuthRateLimit is issue 5's yardstick: key-auth plus a local
// rate limit keyed by consumer (a limit never reached, so every request is admitted).
func BenchmarkPluginOverheadKeyAuthRateLimit(b *testing.B) {
	benchPluginOverhead(b, pspec("key-auth", `{}`),
		pspec("rate-limit", `{"requests":1000000000,"window":"1s","key":"consumer"}`))
}

func benchPluginOverhead(b *testing.B, plugins ...ir.PluginSpec) {
	rt := New(Options{})
	defer rt.Shutdown(context.Background())
	s := simpleSnapshot(1, []ir.Upstream{upstreamFor("up", "127.0.0.1:1")},
		withPlugins(prefixRoute("api", "/api", "up"), plugins...))
	s.Consumers = []ir.Consumer{keyConsumer("alice", "alice-secret-key")}
	for i := 0; i < 1000; i++ {
		s.Consumers = append(s.Consumers, keyConsumer("c"+itoa(i), "key-"+itoa(i)))
	}
	hl, st := benchListener(b, rt, s, nil)
	cr := st.routes[0]
	req := &http.Request{Method: "GET", URL: &url.URL{Path: "/api"}, Header: http.Header{}, RemoteAddr: "127.0.0.1:4000"}
	key := []string{"alice-secret-key"}
	w := &benchWriter{h: http.Header{}}
	x := &exchange{st: st}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Header["Apikey"] = key
		if !hl.hold(st) {
			b.Fatal("hold")
		}
		pw, ok := hl.startPlugins(x, w, req, cr)
		if !ok || !x.plug.upstreamRequest(req) {
			b.Fatal("rejected")
		}
		pw.WriteHeader(200)
		x.plug.finish(x, false)
		x.plug = nil
	}
}

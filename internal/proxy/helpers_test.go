package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
)

// freePort finds a port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuf is a concurrency-safe buffer for logs.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testEnv is a runtime with metrics and an access log, shut down at test end.
type testEnv struct {
	rt      *Runtime
	metrics *observe.Metrics
	logs    *lockedBuf
	alog    *observe.AccessLog
	errs    *lockedBuf
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{metrics: observe.NewMetrics(), logs: &lockedBuf{}, errs: &lockedBuf{}}
	e.alog = observe.NewAccessLog(e.logs)
	e.rt = New(Options{
		Logger:       slog.New(slog.NewTextHandler(e.errs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		AccessLog:    e.alog,
		Metrics:      e.metrics,
		DrainTimeout: 5 * time.Second,
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.rt.Shutdown(ctx)
		_ = e.alog.Close()
	})
	return e
}

func (e *testEnv) apply(t testing.TB, s *ir.Snapshot) {
	t.Helper()
	if err := e.rt.Apply(s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// echoBackend answers with a JSON description of the request it received.
type echoed struct {
	Backend string              `json:"backend"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	RawPath string              `json:"rawPath"`
	Query   string              `json:"query"`
	Host    string              `json:"host"`
	Proto   string              `json:"proto"`
	Header  map[string][]string `json:"header"`
	Body    string              `json:"body"`
}

func echoBackend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		_ = json.NewEncoder(w).Encode(echoed{
			Backend: name, Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath,
			Query: r.URL.RawQuery, Host: r.Host, Proto: r.Proto, Header: r.Header, Body: string(body),
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func addrOf(s *httptest.Server) string {
	u := s.URL
	u = strings.TrimPrefix(u, "http://")
	return strings.TrimPrefix(u, "https://")
}

func upstreamFor(name string, addrs ...string) ir.Upstream {
	u := ir.Upstream{Name: name, Protocol: ir.UpstreamHTTP, Algorithm: "round-robin"}
	for _, a := range addrs {
		u.Endpoints = append(u.Endpoints, ir.Endpoint{Address: a, Weight: 1})
	}
	return u
}

func prefixRoute(name, prefix string, backends ...string) ir.Route {
	r := ir.Route{Name: name, Gateway: "default/http", Path: ir.PathMatch{Type: ir.MatchPrefix, Value: prefix}}
	for _, b := range backends {
		r.Backends = append(r.Backends, ir.Backend{Upstream: b, Weight: 1})
	}
	return r
}

func httpListenerIR(port int, vhosts ...ir.VirtualHost) ir.Listener {
	return ir.Listener{
		Name:         "127.0.0.1:" + strconv.Itoa(port),
		Address:      "127.0.0.1",
		Port:         int32(port),
		Protocol:     ir.HTTP,
		Gateways:     []string{"default/http"},
		VirtualHosts: vhosts,
	}
}

func anyHost(routes ...ir.Route) ir.VirtualHost { return ir.VirtualHost{Hostname: "*", Routes: routes} }

// simpleSnapshot serves every route on one plaintext listener, any host.
func simpleSnapshot(port int, ups []ir.Upstream, routes ...ir.Route) *ir.Snapshot {
	s := &ir.Snapshot{
		Listeners: []ir.Listener{httpListenerIR(port, anyHost(routes...))},
		Upstreams: ups,
	}
	s.ComputeVersion()
	return s
}

// client is a plain HTTP/1.1 client that never reuses state across tests.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableCompression: true},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type result struct {
	status int
	header http.Header
	body   []byte
	echo   echoed
}

func do(t testing.TB, c *http.Client, method, url string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, body: body}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.Header.Get("X-Backend") != "" {
		if err := json.Unmarshal(body, &r.echo); err != nil {
			t.Fatalf("decode echo %q: %v", body, err)
		}
	}
	return r
}

func get(t testing.TB, c *http.Client, url string, hdr ...string) result {
	t.Helper()
	return do(t, c, http.MethodGet, url, hdr...)
}

// errorCode extracts error.code from a gateway JSON error body.
func errorCode(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if e.Error.Message == "" {
		t.Fatalf("error body %q has no message", body)
	}
	return e.Error.Code
}

func base(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }

func itoa(i int) string { return strconv.Itoa(i) }

package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

func TestForwardedHeaders(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("a", addrOf(a))}, prefixRoute("r", "/", "a")))
	cl := newClient()
	r := get(t, cl, base(port)+"/", "Host", "site.example:81",
		"X-Forwarded-For", "203.0.113.9", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example",
		"Forwarded", "for=203.0.113.9")
	h := http.Header(r.echo.Header)
	checks := map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "site.example:81",
		"Forwarded":         `for=203.0.113.9, for=127.0.0.1;host="site.example:81";proto=http`,
	}
	for k, want := range checks {
		if got := strings.Join(h.Values(k), "|"); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if r.echo.Host != "site.example:81" {
		t.Errorf("Host = %q, want the client's", r.echo.Host)
	}
	// Without prior values.
	r = get(t, cl, base(port)+"/")
	if got := http.Header(r.echo.Header).Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("XFF = %q", got)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("a", addrOf(a))}, prefixRoute("r", "/", "a")))
	cl := newClient()
	r1, r2 := get(t, cl, base(port)+"/"), get(t, cl, base(port)+"/")
	id1 := http.Header(r1.echo.Header).Get("X-Request-Id")
	id2 := http.Header(r2.echo.Header).Get("X-Request-Id")
	if id1 == "" || id1 == id2 || r1.header.Get("X-Request-Id") != id1 {
		t.Fatalf("generated ids %q %q (response %q)", id1, id2, r1.header.Get("X-Request-Id"))
	}
	r := get(t, cl, base(port)+"/", "X-Request-Id", "from-client")
	if http.Header(r.echo.Header).Get("X-Request-Id") != "from-client" || r.header.Get("X-Request-Id") != "from-client" {
		t.Fatalf("propagated id: upstream %v response %v", r.echo.Header, r.header)
	}
	// Errors carry it too.
	if r := get(t, cl, base(port)+"/", "Host", "x", "X-Request-Id", "err-id"); r.header.Get("X-Request-Id") != "err-id" {
		t.Fatalf("id on response: %v", r.header)
	}
}

// rawBackend answers every request on a connection with a fixed raw response and
// records the raw request head it got.
func rawBackend(t *testing.T, response string) (addr string, heads <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					ch <- head.String()
					if _, err := io.WriteString(c, response); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func headerLines(head string) http.Header {
	h := http.Header{}
	for _, l := range strings.Split(head, "\r\n")[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			h.Add(k, strings.TrimSpace(v))
		}
	}
	return h
}

func TestHopByHopBothWays(t *testing.T) {
	e := newEnv(t)
	resp := "HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop, keep-alive\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-End-To-End: yes\r\nContent-Length: 2\r\n\r\nok"
	addr, heads := rawBackend(t, resp)
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("raw", addr)}, prefixRoute("r", "/", "raw")))

	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /x HTTP/1.1\r\nHost: h.example\r\nConnection: keep-alive, X-Req-Hop\r\nX-Req-Hop: secret\r\n" +
		"Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate;q=0.5\r\nUpgrade: foo\r\n" +
		"X-Keep: yes\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	rr, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rr.Body)
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
	up := headerLines(<-heads)
	for _, k := range []string{"Connection", "X-Req-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade"} {
		if v := up.Get(k); v != "" {
			t.Errorf("upstream got hop-by-hop %s: %q", k, v)
		}
	}
	if up.Get("Te") != "trailers" || up.Get("X-Keep") != "yes" {
		t.Errorf("upstream TE %q X-Keep %q", up.Get("Te"), up.Get("X-Keep"))
	}
	for _, k := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade"} {
		if v := rr.Header.Get(k); v != "" {
			t.Errorf("client got hop-by-hop %s: %q", k, v)
		}
	}
	if v := rr.Header.Get("Connection"); v != "" && !strings.EqualFold(v, "keep-alive") {
		t.Errorf("client got Connection %q", v)
	}
	if rr.Header.Get("X-End-To-End") != "yes" {
		t.Errorf("end-to-end header lost: %v", rr.Header)
	}
}

func TestUpstreamErrors(t *testing.T) {
	e := newEnv(t)
	slow := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	reset := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	})
	dead := "127.0.0.1:" + itoa(freePort(t))
	port := freePort(t)
	timeout := prefixRoute("timeout", "/timeout", "slow")
	timeout.TimeoutMillis = 150
	ups := []ir.Upstream{
		upstreamFor("dead", dead), upstreamFor("empty"), upstreamFor("slow", addrOf(slow)),
		upstreamFor("reset", addrOf(reset)),
	}
	e.apply(t, simpleSnapshot(port, ups,
		prefixRoute("dead", "/dead", "dead"), prefixRoute("empty", "/empty", "empty"),
		timeout, prefixRoute("reset", "/reset", "reset"), prefixRoute("slow", "/slow", "slow"), prefixRoute("panic", "/panic", "dead")))
	testHookServe = func(r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
	}
	defer func() { testHookServe = nil }()
	cl := newClient()
	cases := []struct {
		path   string
		status int
		code   string
	}{
		{"/dead", 502, "upstream_connect_failed"},
		{"/empty", 503, "upstream_unavailable"},
		{"/timeout", 504, "upstream_timeout"},
		{"/reset", 502, "upstream_reset"},
		{"/panic", 500, "internal_error"},
	}
	for _, tc := range cases {
		start := time.Now()
		r := get(t, cl, base(port)+tc.path)
		if r.status != tc.status || errorCode(t, r.body) != tc.code || r.header.Get("X-Portico-Error") != tc.code {
			t.Errorf("%s: %d %s %v", tc.path, r.status, r.body, r.header)
		}
		if tc.path == "/timeout" && time.Since(start) > 2*time.Second {
			t.Errorf("timeout took %v", time.Since(start))
		}
	}
	if !strings.Contains(e.errs.String(), "panic serving request") {
		t.Errorf("panic not logged: %s", e.errs.String())
	}

	// A client that leaves is logged as 499 and gets nothing written.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base(port)+"/slow?client=gone", nil)
	req.Header.Set("X-Request-Id", "gone-499")
	if _, err := cl.Do(req); err == nil {
		t.Fatal("expected client timeout")
	}
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"request_id":"gone-499"`) })
	line := findLine(e.logs.String(), "gone-499")
	if !strings.Contains(line, `"status":499`) {
		t.Fatalf("log line %s", line)
	}
}

func httptestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func findLine(logs, needle string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, needle) {
			return l
		}
	}
	return ""
}

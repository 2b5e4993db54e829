package l4

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy/proxyproto"
)

func TestTCPBalancesAcrossBackends(t *testing.T) {
	ups := buildUpstreams(t, upstreamDef("echo", tagServer(t, "A", false, nil), tagServer(t, "B", false, nil)))
	l := startL4(t, ir.TCP, nil, ups, streamRoute("r", nil, "echo"))
	seen := map[string]int{}
	for i := range 10 {
		got := exchange(t, l.Addr().String(), "ping"+itoa(i))
		tag, rest, _ := strings.Cut(got, "|")
		if rest != "ping"+itoa(i) {
			t.Fatalf("got %q", got)
		}
		seen[tag]++
	}
	if seen["A"] != 5 || seen["B"] != 5 {
		t.Fatalf("round-robin spread %v, want 5/5", seen)
	}
}

func TestTCPConnectFailover(t *testing.T) {
	live := tagServer(t, "live", false, nil)
	ups := buildUpstreams(t, upstreamDef("echo", deadAddr(t), live))
	l := startL4(t, ir.TCP, nil, ups, streamRoute("r", nil, "echo"))
	for range 6 {
		if got := exchange(t, l.Addr().String(), "x"); got != "live|x" {
			t.Fatalf("got %q, want live|x", got)
		}
	}
}

func TestTCPAllEndpointsDownCloses(t *testing.T) {
	ups := buildUpstreams(t, upstreamDef("echo", deadAddr(t), deadAddr(t)))
	l := startL4(t, ir.TCP, nil, ups, streamRoute("r", nil, "echo"))
	if got := exchange(t, l.Addr().String(), "x"); got != "" {
		t.Fatalf("got %q, want the connection closed", got)
	}
}

// TestTCPHalfClose: the backend finishes sending first and keeps reading; the
// client still gets to send afterwards, and each side sees the other's EOF.
func TestTCPHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "bye")
		_ = c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		received <- string(b)
	}()
	ups := buildUpstreams(t, upstreamDef("srv", ln.Addr().String()))
	l := startL4(t, ir.TCP, nil, ups, streamRoute("r", nil, "srv"))

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c) // the server's EOF reaches us while we can still write
	if err != nil || string(b) != "bye" {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := io.WriteString(c, "late data"); err != nil {
		t.Fatalf("write after the server half-closed: %v", err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	select {
	case got := <-received:
		if got != "late data" {
			t.Fatalf("server received %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw the client's EOF")
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	ups := buildUpstreams(t, upstreamDef("echo", tagServer(t, "A", false, nil)))
	sr := streamRoute("r", nil, "echo")
	sr.IdleTimeoutMillis = 300
	l := startL4(t, ir.TCP, nil, ups, sr)

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	// Traffic every 100ms keeps the connection alive past the timeout.
	for i := range 6 {
		if _, err := io.WriteString(c, "k"); err != nil {
			t.Fatal(err)
		}
		want := "k"
		if i == 0 {
			want = "A|k"
		}
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(r, buf); err != nil || string(buf) != want {
			t.Fatalf("round %d: %q, %v", i, buf, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Silence: the proxy closes it.
	start := time.Now()
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after silence: %v, want EOF", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("closed after %v, want about 300ms", d)
	}
}

func TestTLSPassthroughBySNI(t *testing.T) {
	ca := newCA(t)
	ups := buildUpstreams(t,
		upstreamDef("a", tlsBackend(t, ca, "a.example.com")),
		upstreamDef("b", tlsBackend(t, ca, "b.example.org")),
		upstreamDef("wild", tlsBackend(t, ca, "x.wild.test")))
	routes := []ir.StreamRoute{
		streamRoute("ra", []string{"a.example.com"}, "a"),
		streamRoute("rb", []string{"B.Example.org"}, "b"),
		streamRoute("rw", []string{"*.wild.test"}, "wild"),
	}
	l := startL4(t, ir.TLS, nil, ups, routes...)

	hello := func(sni string) (string, error) {
		d := &net.Dialer{Timeout: 2 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", l.Addr().String(), &tls.Config{ServerName: sni, RootCAs: ca.pool})
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "hi\n"); err != nil {
			return "", err
		}
		b, err := io.ReadAll(c)
		return string(b), err
	}
	for sni, want := range map[string]string{
		"a.example.com": "a.example.com|hi\n",
		"b.example.org": "b.example.org|hi\n",
		"x.wild.test":   "x.wild.test|hi\n",
	} {
		// The client verifies the backend's own certificate: proof that the
		// proxy passed TLS through instead of terminating it.
		got, err := hello(sni)
		if err != nil || got != want {
			t.Fatalf("SNI %s: %q, %v; want %q", sni, got, err, want)
		}
	}
	if _, err := hello("unknown.example.net"); err == nil {
		t.Fatal("unknown SNI without a fallback route was proxied")
	}

	// A route without SNI catches unknown names.
	l.Store(compileState(t, ir.TLS, nil, ups, append(routes, streamRoute("any", nil, "a"))...))
	if _, err := hello("unknown.example.net"); err == nil || !strings.Contains(err.Error(), "a.example.com") {
		t.Fatalf("fallback: %v, want a certificate error naming a.example.com", err)
	}
}

func TestTLSListenerRefusesNonTLS(t *testing.T) {
	ups := buildUpstreams(t, upstreamDef("a", tagServer(t, "A", false, nil)))
	l := startL4(t, ir.TLS, nil, ups, streamRoute("any", nil, "a"))
	if got := exchange(t, l.Addr().String(), "GET / HTTP/1.1\r\n\r\n"); got != "" {
		t.Fatalf("got %q from a plaintext client", got)
	}
}

func TestProxyProtocolToUpstream(t *testing.T) {
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			headers := make(chan *proxyproto.Header, 1)
			def := upstreamDef("pp", tagServer(t, "A", true, headers))
			def.ProxyProtocol = v
			ups := buildUpstreams(t, def)
			l := startL4(t, ir.TCP, nil, ups, streamRoute("r", nil, "pp"))

			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = io.WriteString(c, "data")
			_ = c.(*net.TCPConn).CloseWrite()
			b, _ := io.ReadAll(c)
			if string(b) != "A|data" {
				t.Fatalf("got %q", b)
			}
			h := <-headers
			if h.Version != map[string]int{"v1": 1, "v2": 2}[v] {
				t.Fatalf("version %d", h.Version)
			}
			if h.Source.String() != c.LocalAddr().String() || h.Destination.String() != l.Addr().String() {
				t.Fatalf("header %v -> %v, want %v -> %v", h.Source, h.Destination, c.LocalAddr(), l.Addr())
			}
		})
	}
}

// TestProxyProtocolAcceptedAndForwarded: a trusted load balancer's header sets
// the client address, which is what the upstream's header then carries.
func TestProxyProtocolAcceptedAndForwarded(t *testing.T) {
	headers := make(chan *proxyproto.Header, 1)
	def := upstreamDef("pp", tagServer(t, "A", true, headers))
	def.ProxyProtocol = "v2"
	ups := buildUpstreams(t, def)
	trusted := startL4(t, ir.TCP, &ir.ProxyProtocolAccept{TrustedCIDRs: []string{"127.0.0.0/8"}}, ups, streamRoute("r", nil, "pp"))

	got := exchange(t, trusted.Addr().String(), "PROXY TCP4 203.0.113.7 192.0.2.10 4242 443\r\nhello")
	if got != "A|hello" {
		t.Fatalf("got %q", got)
	}
	if h := <-headers; h.Source.String() != "203.0.113.7:4242" || h.Destination.String() != "192.0.2.10:443" {
		t.Fatalf("upstream saw %v -> %v", h.Source, h.Destination)
	}
	// Trusted but no header: refused.
	if got := exchange(t, trusted.Addr().String(), "hello"); got != "" {
		t.Fatalf("headerless trusted connection got %q", got)
	}

	untrusted := startL4(t, ir.TCP, &ir.ProxyProtocolAccept{TrustedCIDRs: []string{"10.0.0.0/8"}}, ups, streamRoute("r", nil, "pp"))
	if got := exchange(t, untrusted.Addr().String(), "PROXY TCP4 203.0.113.7 192.0.2.10 4242 443\r\nhello"); strings.Contains(got, "hello") {
		t.Fatalf("forged header from an untrusted source passed: %q", got)
	}
	select { // the upstream connection may have been opened before the forgery was seen
	case <-headers:
	case <-time.After(time.Second):
	}
	if got := exchange(t, untrusted.Addr().String(), "hello"); got != "A|hello" {
		t.Fatalf("untrusted plain connection: %q", got)
	}
	if h := <-headers; !strings.HasPrefix(h.Source.String(), "127.0.0.1:") {
		t.Fatalf("untrusted source reported as %v", h.Source)
	}
}

func TestShutdownDrainsThenCuts(t *testing.T) {
	ups := buildUpstreams(t, upstreamDef("echo", tagServer(t, "A", false, nil)))
	l, err := Listen("t", "127.0.0.1", 0, ir.TCP, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Store(compileState(t, ir.TCP, nil, ups, streamRoute("r", nil, "echo")))
	l.Start()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextTimeout(300 * time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := l.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown cut an open connection without reporting it")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("Shutdown returned after %v, before the drain timeout", d)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("connection still open after the drain timeout")
	}
}

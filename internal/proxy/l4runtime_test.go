package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// lineBackend answers each line with "tag:line" until the client half-closes.
func lineBackend(t *testing.T, tag string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, tag+":"+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func l4ListenerIR(proto ir.Protocol, port int, gw string) ir.Listener {
	return ir.Listener{Name: "127.0.0.1:" + itoa(port), Address: "127.0.0.1", Port: int32(port),
		Protocol: proto, Gateways: []string{gw}}
}

func tcpSnapshot(port int, ups []ir.Upstream, upstream string) *ir.Snapshot {
	l := l4ListenerIR(ir.TCP, port, "default/tcp")
	s := &ir.Snapshot{
		Listeners: []ir.Listener{l},
		Upstreams: ups,
		StreamRoutes: []ir.StreamRoute{{Name: "tcp", Listener: l.Name,
			Backends: []ir.Backend{{Upstream: upstream, Weight: 1}}}},
	}
	s.ComputeVersion()
	return s
}

type lineConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialLines(t *testing.T, port int) *lineConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &lineConn{c, bufio.NewReader(c)}
}

func (l *lineConn) ask(t *testing.T, msg string) string {
	t.Helper()
	if _, err := io.WriteString(l.c, msg+"\n"); err != nil {
		t.Fatal(err)
	}
	line, err := l.r.ReadString('\n')
	if err != nil {
		t.Fatalf("ask %q: %v", msg, err)
	}
	return strings.TrimSuffix(line, "\n")
}

func TestL4SwapKeepsOpenConnection(t *testing.T) {
	e := newEnv(t)
	ups := []ir.Upstream{upstreamFor("a", lineBackend(t, "A")), upstreamFor("b", lineBackend(t, "B"))}
	port := freePort(t)
	e.apply(t, tcpSnapshot(port, ups, "a"))

	old := dialLines(t, port)
	if got := old.ask(t, "1"); got != "A:1" {
		t.Fatalf("got %q", got)
	}
	e.apply(t, tcpSnapshot(port, ups, "b"))
	if got := dialLines(t, port).ask(t, "2"); got != "B:2" {
		t.Fatalf("new connection: %q, want the new route", got)
	}
	if got := old.ask(t, "3"); got != "A:3" {
		t.Fatalf("open connection after swap: %q, want it on its old route", got)
	}

	// Removing the listener stops accepting; the open connection drains.
	e.apply(t, simpleSnapshot(freePort(t), ups, prefixRoute("r", "/", "a")))
	deadline := time.Now().Add(2 * time.Second)
	for !refused(port) {
		if time.Now().After(deadline) {
			t.Fatal("removed L4 listener still accepts")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := old.ask(t, "4"); got != "A:4" {
		t.Fatalf("draining connection: %q", got)
	}
}

func TestL4ProtocolChanges(t *testing.T) {
	e := newEnv(t)
	ups := []ir.Upstream{upstreamFor("a", lineBackend(t, "A"))}
	port := freePort(t)
	s := tcpSnapshot(port, ups, "a")
	e.apply(t, s)
	// TCP -> UDP on the same port: a UDP socket is bound, the TCP one goes.
	s.Listeners[0].Protocol = ir.UDP
	s.ComputeVersion()
	e.apply(t, s)
	time.Sleep(100 * time.Millisecond)
	if !refused(port) {
		t.Fatal("TCP socket still open after the listener became UDP")
	}
	// And back to TCP.
	s.Listeners[0].Protocol = ir.TCP
	s.ComputeVersion()
	e.apply(t, s)
	if got := dialLines(t, port).ask(t, "x"); got != "A:x" {
		t.Fatalf("got %q", got)
	}
}

func TestL4ApplyAtomicPortInUse(t *testing.T) {
	e := newEnv(t)
	ups := []ir.Upstream{upstreamFor("a", lineBackend(t, "A")), upstreamFor("b", lineBackend(t, "B"))}
	tcpPort := freePort(t)
	good := tcpSnapshot(tcpPort, ups, "a")
	e.apply(t, good)

	for _, proto := range []ir.Protocol{ir.TCP, ir.UDP} {
		network := l4Network(proto)
		busyPort, closeBusy := occupy(t, network)
		httpPort, newTCP := freePort(t), freePort(t)
		next := tcpSnapshot(tcpPort, ups, "b") // a route change that would apply
		next.Listeners = append(next.Listeners,
			httpListenerIR(httpPort, anyHost(prefixRoute("r", "/", "a"))),
			l4ListenerIR(ir.TCP, newTCP, "edge/new"),
			l4ListenerIR(proto, busyPort, "edge/busy"))
		next.StreamRoutes = append(next.StreamRoutes, ir.StreamRoute{Name: "n", Listener: next.Listeners[2].Name,
			Backends: []ir.Backend{{Upstream: "a", Weight: 1}}})
		next.ComputeVersion()
		err := e.rt.Apply(next)
		if err == nil || !strings.Contains(err.Error(), "edge/busy") || !strings.Contains(err.Error(), network) {
			t.Fatalf("%s port in use: err = %v", proto, err)
		}
		if !refused(httpPort) || !refused(newTCP) {
			t.Fatalf("%s: a socket bound by the failed Apply is still open", proto)
		}
		if got := dialLines(t, tcpPort).ask(t, "x"); got != "A:x" {
			t.Fatalf("%s: old route not serving: %q", proto, got)
		}
		if e.rt.Snapshot().Version != good.Version {
			t.Fatalf("%s: Snapshot() changed after a failed Apply", proto)
		}
		closeBusy()
	}
}

// occupy binds a port on 127.0.0.1 for network ("tcp" or "udp").
func occupy(t *testing.T, network string) (int, func()) {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return pc.LocalAddr().(*net.UDPAddr).Port, func() { pc.Close() }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().(*net.TCPAddr).Port, func() { ln.Close() }
}

func l4Network(p ir.Protocol) string {
	if p == ir.UDP {
		return "udp"
	}
	return "tcp"
}

// rawHTTP sends raw bytes and returns the response (nil if the connection was
// closed without one).
func rawHTTP(t *testing.T, port int, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var echo echoed
	if json.Unmarshal(body, &echo) == nil {
		resp.Header.Set("X-Test-XFF", strings.Join(echo.Header["X-Forwarded-For"], ","))
	}
	return resp
}

func TestHTTPListenerAcceptsProxyProtocol(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	port := freePort(t)
	s := simpleSnapshot(port, []ir.Upstream{upstreamFor("a", addrOf(a))}, prefixRoute("r", "/", "a"))
	s.Listeners[0].ProxyProtocol = &ir.ProxyProtocolAccept{TrustedCIDRs: []string{"127.0.0.0/8"}}
	s.ComputeVersion()
	e.apply(t, s)

	const req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for _, hdr := range []string{
		"PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xcb\x00\x71\x07\x7f\x00\x00\x01\x9c\x40\x1f\x90",
	} {
		resp := rawHTTP(t, port, hdr+req)
		if resp == nil || resp.StatusCode != 200 {
			t.Fatalf("trusted PROXY header: %v", resp)
		}
		if got := resp.Header.Get("X-Test-XFF"); got != "203.0.113.7" {
			t.Fatalf("X-Forwarded-For = %q, want the address from the PROXY header", got)
		}
	}
	if resp := rawHTTP(t, port, req); resp != nil {
		t.Fatalf("trusted source without a header was served: %d", resp.StatusCode)
	}

	// Untrusted source: a header is refused, a plain request is served.
	s.Listeners[0].ProxyProtocol.TrustedCIDRs = []string{"10.0.0.0/8"}
	s.ComputeVersion()
	e.apply(t, s)
	if resp := rawHTTP(t, port, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n"+req); resp != nil {
		t.Fatalf("forged header from an untrusted source was served: %d", resp.StatusCode)
	}
	resp := rawHTTP(t, port, req)
	if resp == nil || resp.StatusCode != 200 || resp.Header.Get("X-Test-XFF") != "127.0.0.1" {
		t.Fatalf("untrusted plain request: %v", resp)
	}

	// Turning the option off serves headerless clients from anywhere again.
	s.Listeners[0].ProxyProtocol = nil
	s.ComputeVersion()
	e.apply(t, s)
	if resp := rawHTTP(t, port, req); resp == nil || resp.StatusCode != 200 {
		t.Fatalf("without PROXY protocol: %v", resp)
	}
}

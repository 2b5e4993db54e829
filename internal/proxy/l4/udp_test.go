package l4

import (
	"net"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

func udpAsk(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reply to %q: %v", msg, err)
	}
	return string(buf[:n])
}

func TestUDPSessions(t *testing.T) {
	ups := buildUpstreams(t, upstreamDef("dns", udpEcho(t, "A")))
	sr := streamRoute("r", nil, "dns")
	sr.IdleTimeoutMillis = 300
	l := startL4(t, ir.UDP, nil, ups, sr)

	c1, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()

	// Each client's session has its own upstream socket: the backend sees two
	// distinct sources, stable per client; replies come from the listener.
	src := map[net.Conn]string{}
	for i := range 3 {
		for _, c := range []net.Conn{c1, c2} {
			msg := c.LocalAddr().String() + "#" + itoa(i)
			parts := strings.SplitN(udpAsk(t, c, msg), "|", 3)
			if len(parts) != 3 || parts[0] != "A" || parts[2] != msg {
				t.Fatalf("reply %q", parts)
			}
			if src[c] == "" {
				src[c] = parts[1]
			} else if src[c] != parts[1] {
				t.Fatalf("session source changed from %s to %s", src[c], parts[1])
			}
		}
	}
	if src[c1] == src[c2] {
		t.Fatalf("both clients share upstream source %s", src[c1])
	}
	if n := l.Sessions(); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}

	// Silence ends both sessions; a new datagram opens a new one.
	deadline := time.Now().Add(3 * time.Second)
	for l.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left after the idle timeout", l.Sessions())
		}
		time.Sleep(50 * time.Millisecond)
	}
	parts := strings.SplitN(udpAsk(t, c1, "again"), "|", 3)
	if parts[1] == src[c1] {
		t.Fatalf("expired session reused its upstream socket %s", parts[1])
	}
}

func TestUDPSessionTableBounded(t *testing.T) {
	ups := buildUpstreams(t, upstreamDef("dns", udpEcho(t, "A")))
	l, err := Listen("t", "127.0.0.1", 0, ir.UDP, Options{MaxUDPSessions: 1})
	if err != nil {
		t.Fatal(err)
	}
	l.Store(compileState(t, ir.UDP, nil, ups, streamRoute("r", nil, "dns")))
	l.Start()
	defer l.Shutdown(t.Context())

	c1, _ := net.Dial("udp", l.Addr().String())
	defer c1.Close()
	c2, _ := net.Dial("udp", l.Addr().String())
	defer c2.Close()
	udpAsk(t, c1, "one")
	_ = c2.SetDeadline(time.Now().Add(300 * time.Millisecond))
	_, _ = c2.Write([]byte("two"))
	if _, err := c2.Read(make([]byte, 64)); err == nil {
		t.Fatal("a second session was opened past the bound")
	}
	udpAsk(t, c1, "still served")
}

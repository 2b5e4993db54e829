package l4

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// clientHello captures the first flight of a real TLS client.
func clientHello(t testing.TB, sni string) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: sni, InsecureSkipVerify: sni == ""})
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_ = c.Handshake()
		a.Close()
	}()
	_ = b.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64<<10)
	n := 0
	// Read the first record (header + body).
	for n < 5 || n < 5+int(buf[3])<<8|int(buf[4]) {
		m, err := b.Read(buf[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	b.Close()
	return buf[:n]
}

func TestPeekClientHello(t *testing.T) {
	for _, sni := range []string{"a.example.com", ""} {
		raw := clientHello(t, sni)
		a, b := net.Pipe()
		go func() { _, _ = a.Write(append(raw, "tail"...)); a.Close() }()
		name, c, err := peekClientHello(b)
		if err != nil || name != sni {
			t.Fatalf("SNI %q: got %q, %v", sni, name, err)
		}
		// The replayed stream is exactly what the client sent.
		got := make([]byte, len(raw)+4)
		if _, err := readFull(c, got); err != nil || string(got) != string(raw)+"tail" {
			t.Fatalf("replay differs: %v", err)
		}
	}
	// Split across two records.
	raw := clientHello(t, "split.example.com")
	body := raw[5:]
	rec := func(p []byte) []byte { return append([]byte{0x16, 3, 1, byte(len(p) >> 8), byte(len(p))}, p...) }
	two := append(rec(body[:20]), rec(body[20:])...)
	a, b := net.Pipe()
	go func() { _, _ = a.Write(two); a.Close() }()
	if name, _, err := peekClientHello(b); err != nil || name != "split.example.com" {
		t.Fatalf("split record: %q, %v", name, err)
	}
}

func TestPeekClientHelloRejects(t *testing.T) {
	raw := clientHello(t, "a.example.com")
	for name, in := range map[string][]byte{
		"http":       []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"alert":      {0x15, 3, 1, 0, 2, 2, 40},
		"truncated":  raw[:len(raw)-10],
		"empty len":  {0x16, 3, 1, 0, 0},
		"not hello":  {0x16, 3, 1, 0, 4, 2, 0, 0, 0},
		"huge":       {0x16, 3, 1, 0xff, 0xff},
		"bad vector": {0x16, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0},
	} {
		a, b := net.Pipe()
		go func() { _, _ = a.Write(in); a.Close() }()
		if got, _, err := peekClientHello(b); err == nil {
			t.Errorf("%s: accepted, SNI %q", name, got)
		}
	}
}

func FuzzParseSNI(f *testing.F) {
	raw := clientHello(f, "fuzz.example.com")
	f.Add(raw[9:])
	f.Add([]byte{3, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSNI(b)
	})
}

func readFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

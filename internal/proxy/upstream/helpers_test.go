package upstream

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// rawServer is a scripted TCP server on 127.0.0.1: serve runs per accepted
// connection; accepts counts connections.
type rawServer struct {
	ln      net.Listener
	accepts atomic.Int32
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newRawServer(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

func (s *rawServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// readReq reads one request head (and a Content-Length body) and returns the
// request line and headers, or ok=false on EOF.
func readReq(br *bufio.Reader) (line string, hdr map[string]string, body string, ok bool) {
	hdr = map[string]string{}
	for i := 0; ; i++ {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", nil, "", false
		}
		l = strings.TrimRight(l, "\r\n")
		if i == 0 {
			line = l
			continue
		}
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		hdr[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	if cl := hdr["content-length"]; cl != "" && cl != "0" {
		n := 0
		for _, c := range cl {
			n = n*10 + int(c-'0')
		}
		b := make([]byte, n)
		if _, err := ioReadFull(br, b); err != nil {
			return "", nil, "", false
		}
		body = string(b)
	}
	return line, hdr, body, true
}

// keepAliveOK answers every request with a 2-byte body on one connection.
func keepAliveOK(c net.Conn, br *bufio.Reader) {
	for {
		if _, _, _, ok := readReq(br); !ok {
			return
		}
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
			return
		}
	}
}

func testOpts() Options { return Options{DialTimeout: time.Second} }

// oneUpstream builds a single-upstream registry for addrs.
func oneUpstream(t testing.TB, proto string, tls *ir.UpstreamTLS, opts Options, addrs ...string) (*Registry, *Upstream) {
	t.Helper()
	def := ir.Upstream{Name: "u", Protocol: proto, TLS: tls}
	for _, a := range addrs {
		def.Endpoints = append(def.Endpoints, ir.Endpoint{Address: a, Weight: 1})
	}
	r := NewRegistry(opts)
	m, err := r.Build([]ir.Upstream{def})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, m["u"]
}

func newReq(t testing.TB, method, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://example.test"+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ioReadFull(br *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := br.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

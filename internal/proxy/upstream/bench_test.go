package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// benchResponse resembles a small API response.
const benchResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
	"Server: bench\r\nX-Request-Id: 0123456789abcdef\r\nCache-Control: no-store\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}"

// benchServer is a minimal keep-alive server so the client dominates.
func benchServer(b *testing.B) string {
	srv := newRawServer(b, func(c net.Conn, br *bufio.Reader) {
		bw := bufio.NewWriter(c)
		for {
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(l) <= 2 {
					break
				}
			}
			bw.WriteString(benchResponse)
			if br.Buffered() == 0 {
				if bw.Flush() != nil {
					return
				}
			}
		}
	})
	return srv.addr()
}

func benchRequest(b *testing.B, addr string) *http.Request {
	req, err := http.NewRequest("GET", "http://"+addr+"/api/v1/items?limit=10", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = "api.example.com"
	req.Header.Set("User-Agent", "bench/1.0")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	req.Header.Set("X-Request-Id", "fedcba9876543210")
	return req
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func benchClients(b *testing.B, addr string) map[string]roundTripFunc {
	_, u := oneUpstream(b, "http", nil, Options{}, addr)
	tr := &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	own := func(r *http.Request) (*http.Response, error) {
		resp, _, err := u.RoundTrip(r)
		return resp, err
	}
	return map[string]roundTripFunc{
		"portico": own,
		"portico-readresponse": func(r *http.Request) (*http.Response, error) {
			altReadResponse = stdReadResponse
			defer func() { altReadResponse = nil }()
			return own(r)
		},
		"net-http-transport": tr.RoundTrip,
	}
}

func doBench(b *testing.B, rt roundTripFunc, req *http.Request) {
	resp, err := rt(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// BenchmarkRoundTrip compares this package's HTTP/1.1 client (with its own
// response parser and with http.ReadResponse) against net/http's Transport
// on one keep-alive server.
func BenchmarkRoundTrip(b *testing.B) {
	addr := benchServer(b)
	clients := benchClients(b, addr)
	for _, name := range []string{"portico", "portico-readresponse", "net-http-transport"} {
		rt := clients[name]
		b.Run(name, func(b *testing.B) {
			req := benchRequest(b, addr)
			b.ReportAllocs()
			for b.Loop() {
				doBench(b, rt, req)
			}
		})
	}
	// Server requests carry a cancelable context: that costs a
	// context.AfterFunc registration per request.
	for _, name := range []string{"portico", "net-http-transport"} {
		rt := clients[name]
		b.Run(name+"-cancelctx", func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := benchRequest(b, addr).WithContext(ctx)
			b.ReportAllocs()
			for b.Loop() {
				doBench(b, rt, req)
			}
		})
	}
	for _, name := range []string{"portico", "net-http-transport"} {
		rt := clients[name]
		b.Run(name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				req := benchRequest(b, addr)
				for pb.Next() {
					doBench(b, rt, req)
				}
			})
		})
	}
}

// BenchmarkParseHead isolates response-head parsing: own parser vs
// http.ReadResponse, on an in-memory connection.
func BenchmarkParseHead(b *testing.B) {
	for _, tc := range []struct {
		name string
		alt  func(*conn, *http.Request, func() bool) (*http.Response, bool, error)
	}{{"own", nil}, {"readresponse", stdReadResponse}} {
		b.Run(tc.name, func(b *testing.B) {
			src := &repeatReader{s: benchResponse}
			c := &conn{br: bufio.NewReaderSize(src, readBufSize), bw: bufio.NewWriter(io.Discard), nc: nopConn{}, ep: &Endpoint{}}
			c.ep.pool.init(1, time.Hour)
			req, _ := http.NewRequest("GET", "http://x/", nil)
			b.ReportAllocs()
			for b.Loop() {
				altReadResponse = tc.alt
				resp, _, err := c.readResponse(req, nil)
				altReadResponse = nil
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if c.ep.pool.get() != c { // take it back from the pool
					b.Fatal("conn not pooled")
				}
			}
		})
	}
}

type repeatReader struct {
	s string
	i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.s[r.i:])
	r.i = (r.i + n) % len(r.s)
	return n, nil
}

type nopConn struct{ net.Conn }

func (nopConn) Close() error                     { return nil }
func (nopConn) SetDeadline(t time.Time) error    { return nil }
func (nopConn) Read(p []byte) (int, error)       { return 0, io.EOF }
func (nopConn) Write(p []byte) (n int, e error)  { return len(p), nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

// stdReadResponse is the http.ReadResponse variant of readResponse, kept
// for the benchmark comparison.
func stdReadResponse(c *conn, req *http.Request, stop func() bool) (*http.Response, bool, error) {
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err == io.EOF, err
		}
		if resp.StatusCode < 200 && resp.StatusCode != 101 {
			continue
		}
		sb := &stdBody{rc: resp.Body, b: body{c: c, stop: stop, keep: !resp.Close}}
		if resp.Body == http.NoBody {
			sb.b.finish(true)
			return resp, false, nil
		}
		resp.Body = sb
		return resp, false, nil
	}
}

type stdBody struct {
	rc io.ReadCloser
	b  body
}

func (s *stdBody) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if err == io.EOF {
		s.b.finish(true)
	} else if err != nil {
		s.b.finish(false)
	}
	return n, err
}

func (s *stdBody) Close() error {
	s.b.finish(false)
	return nil
}

// BenchmarkPick measures one pick per algorithm over 10 endpoints of mixed
// weights, with a request carrying a hash key (0 allocations expected).
func BenchmarkPick(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://x/api/items", nil)
	req.Header.Set("X-User", "alice")
	req.RemoteAddr = "10.0.0.1:1234"
	for _, alg := range allAlgorithms {
		def := ir.Upstream{Name: "u", Algorithm: alg,
			UpstreamTraffic: ir.UpstreamTraffic{Hash: &ir.HashPolicy{Header: "x-user"}}}
		u := &Upstream{def: def}
		eps := hashEndpoints(10)
		for i, e := range eps {
			e.Weight = int32(1 + i%3)
		}
		bal, _ := newBalancer(&u.def, u, eps)
		u.lb.Store(bal)
		info := &PickInfo{Request: req}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u.Pick(info)
			}
		})
		b.Run(alg+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				info := &PickInfo{Request: req}
				for pb.Next() {
					u.Pick(info)
				}
			})
		})
	}
}

// BenchmarkConsistentHashKeyMove reports the percentage of keys that move
// when 1 of 10 endpoints leaves (ideal 10%).
func BenchmarkConsistentHashKeyMove(b *testing.B) {
	var moved, needless float64
	for b.Loop() {
		moved, needless = keyMoveFraction(b, 10, 100000)
	}
	b.ReportMetric(100*moved, "%moved")
	b.ReportMetric(100*needless, "%needless")
}

package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
)

// fastBackend is a keep-alive HTTP/1.1 server that allocates nothing per request,
// so a benchmark in the same process measures the proxy, not the backend.
func fastBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// benchWriter is a reusable ResponseWriter.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(s int)           { w.status = s }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *benchWriter) Flush()                      {}

// BenchmarkProxyHTTP1 measures the whole handler path in-process: routing, header
// work, the upstream round trip over a loopback keep-alive connection, response
// copy, metrics and access log (to io.Discard).
func BenchmarkProxyHTTP1(b *testing.B) {
	addr := fastBackend(b)
	m := observe.NewMetrics()
	al := observe.NewAccessLog(io.Discard)
	defer al.Close()
	rt := New(Options{Metrics: m, AccessLog: al})
	defer rt.Shutdown(context.Background())

	s := simpleSnapshot(1, []ir.Upstream{upstreamFor("up", addr)}, benchRoutes(prefixRoute("api", "/api", "up"))...)
	hl, _ := benchListener(b, rt, s, m)

	u := &url.URL{Path: "/api/v1/items", RawQuery: "page=2"}
	host := []string{"bench.example"}
	ua := []string{"bench/1.0"}
	accept := []string{"*/*"}
	rid := []string{"fixed-request-id"}
	req := &http.Request{
		Method: "GET", URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: host[0], RemoteAddr: "127.0.0.1:40000", Body: http.NoBody,
	}
	w := &benchWriter{h: http.Header{}}
	tmpl := *req
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := req.Header
		clear(h)
		h["User-Agent"] = ua
		h["Accept"] = accept
		h["X-Request-Id"] = rid
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

// benchRoutes is the benchmarks' route table: five decoys, then api.
func benchRoutes(api ir.Route) []ir.Route {
	routes := []ir.Route{}
	for _, p := range []string{"/a", "/b", "/c", "/users", "/orders"} {
		routes = append(routes, prefixRoute("r"+p, p, "up"))
	}
	return append(routes, api)
}

// benchListener compiles s's first listener (with its plugins) the way Apply does,
// without binding a socket, and returns a handler serving it.
func benchListener(b *testing.B, rt *Runtime, s *ir.Snapshot, m *observe.Metrics) (*httpListener, *listenerState) {
	b.Helper()
	ups, err := rt.registry.Build(s.Upstreams)
	if err != nil {
		b.Fatal(err)
	}
	pb, err := rt.buildPlugins(s)
	if err != nil {
		b.Fatal(err)
	}
	st, err := compileListener(&s.Listeners[0], ups, nil, m, pb, nil)
	if err != nil {
		b.Fatal(err)
	}
	if pb != nil && pb.gen != nil {
		pb.gen.refs.Store(1)
	}
	hl := &httpListener{rt: rt, name: "bench"}
	hl.state.Store(st)
	return hl, st
}

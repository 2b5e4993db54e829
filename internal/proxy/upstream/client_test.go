package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func mustRT(t *testing.T, u *Upstream, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, _, err := u.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func kindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func TestKeepAliveReuse(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), r.Host)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.Listener.Addr().String())
	for i := 0; i < 50; i++ {
		req := newReq(t, "GET", "/a%20b/c?x=1&y=2")
		req.Host = "svc.local"
		resp, body := mustRT(t, u, req)
		if resp.StatusCode != 200 || body != "GET /a%20b/c?x=1&y=2 svc.local" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("sequential requests used %d conns, want 1", n)
	}
	// Concurrent requests grow the pool, then reuse it.
	run := func() {
		done := make(chan struct{})
		for i := 0; i < 8; i++ {
			go func() {
				defer func() { done <- struct{}{} }()
				for j := 0; j < 20; j++ {
					resp, _, err := u.RoundTrip(newReq(t, "GET", "/"))
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		for i := 0; i < 8; i++ {
			<-done
		}
	}
	run()
	after := conns.Load()
	if after > 9 {
		t.Fatalf("8 concurrent clients opened %d conns", after)
	}
	run()
	if n := conns.Load(); n > 9 {
		t.Fatalf("second wave did not reuse the pool: %d -> %d conns", after, n)
	}
}

// A server that closes each connection right after answering makes every
// pooled conn stale: the next request must be replayed transparently.
func TestStaleConnRetried(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, body, ok := readReq(br); ok {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body)+2, "ok"+body)
		}
		time.Sleep(20 * time.Millisecond)
	})
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	for i := 0; i < 5; i++ {
		mustRT(t, u, newReq(t, "GET", "/"))
		time.Sleep(40 * time.Millisecond) // let the server close the idle conn
	}
	if n := srv.accepts.Load(); n != 5 {
		t.Fatalf("accepts = %d, want 5", n)
	}
	// Replayable body (GetBody set by NewRequest for bytes.Reader).
	mustRT(t, u, newReq(t, "GET", "/"))
	time.Sleep(40 * time.Millisecond)
	req, _ := http.NewRequest("POST", "http://x/", bytes.NewReader([]byte("data")))
	if _, body := mustRT(t, u, req); body != "okdata" {
		t.Fatalf("body %q", body)
	}
	// Not replayable: a body without GetBody fails with Reset.
	mustRT(t, u, newReq(t, "GET", "/"))
	time.Sleep(40 * time.Millisecond)
	req, _ = http.NewRequest("POST", "http://x/", io.NopCloser(strings.NewReader("data")))
	req.ContentLength = 4
	if _, _, err := u.RoundTrip(req); kindOf(err) != Reset {
		t.Fatalf("err = %v, want Reset", err)
	}
}

func TestConnectionClose(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, _, _, ok := readReq(br); !ok {
				return
			}
			c.Write([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"))
		}
	})
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	for i := 0; i < 3; i++ {
		resp, body := mustRT(t, u, newReq(t, "GET", "/"))
		if body != "ok" || !resp.Close {
			t.Fatalf("body %q close %v", body, resp.Close)
		}
	}
	if n := srv.accepts.Load(); n != 3 {
		t.Fatalf("accepts = %d, want 3 (Connection: close honoured)", n)
	}
	if n := u.Endpoints()[0].pool.idleLen(); n != 0 {
		t.Fatalf("pooled %d closed conns", n)
	}
}

func TestChunkedBodiesAndTrailers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum, X-Req-Trailer")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		for i := 0; i < 3; i++ {
			w.Write(b)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", fmt.Sprint(len(b)*3))
		w.Header().Set("X-Req-Trailer", r.Trailer.Get("X-Client"))
		if r.TransferEncoding == nil || r.TransferEncoding[0] != "chunked" {
			w.Header().Set("X-Sum", "request was not chunked")
		}
	}))
	defer srv.Close()
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.Listener.Addr().String())
	for i := 0; i < 3; i++ {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte("hello "))
			pw.Write([]byte("world"))
			pw.Close()
		}()
		req, _ := http.NewRequest("PUT", "http://x/", pr)
		req.ContentLength = -1
		req.Trailer = http.Header{"X-Client": {"c1"}}
		resp, body := mustRT(t, u, req)
		if want := strings.Repeat("hello world", 3); body != want {
			t.Fatalf("body %q", body)
		}
		if resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 {
			t.Fatalf("framing: cl=%d te=%v", resp.ContentLength, resp.TransferEncoding)
		}
		if resp.Header.Get("Trailer") != "" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("headers %v", resp.Header)
		}
		if resp.Trailer.Get("X-Sum") != "33" || resp.Trailer.Get("X-Req-Trailer") != "c1" {
			t.Fatalf("trailers %v", resp.Trailer)
		}
	}
	if n := u.Endpoints()[0].pool.idleLen(); n != 1 {
		t.Fatalf("idle = %d, want the one conn back", n)
	}
}

// rawResponder answers each request with a fixed script.
func rawResponder(resp string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			if _, _, _, ok := readReq(br); !ok {
				return
			}
			if _, err := c.Write([]byte(resp)); err != nil {
				return
			}
		}
	}
}

func TestInformationalSkipped(t *testing.T) {
	srv := newRawServer(t, rawResponder("HTTP/1.1 100 Continue\r\n\r\n"+
		"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok"))
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	for i := 0; i < 2; i++ {
		resp, body := mustRT(t, u, newReq(t, "GET", "/"))
		if resp.StatusCode != 201 || resp.Status != "201 Created" || body != "ok" || resp.Header.Get("X-A") != "1" || resp.Header.Get("Link") != "" {
			t.Fatalf("got %d %q %q %v", resp.StatusCode, resp.Status, body, resp.Header)
		}
	}
	if srv.accepts.Load() != 1 {
		t.Fatal("conn not reused after 1xx")
	}
}

func TestNoBodyResponses(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			line, _, _, ok := readReq(br)
			if !ok {
				return
			}
			switch {
			case strings.HasPrefix(line, "HEAD"):
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"))
			case strings.Contains(line, "/204"):
				c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
			case strings.Contains(line, "/304"):
				c.Write([]byte("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nEtag: \"x\"\r\n\r\n"))
			default:
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			}
		}
	})
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	for _, tc := range []struct {
		method, path string
		code         int
		cl           int64
	}{{"HEAD", "/", 200, 1000}, {"GET", "/204", 204, 0}, {"GET", "/304", 304, 0}, {"GET", "/", 200, 2}} {
		resp, body := mustRT(t, u, newReq(t, tc.method, tc.path))
		if resp.StatusCode != tc.code || resp.ContentLength != tc.cl || (tc.cl != 2 && body != "") {
			t.Fatalf("%s %s: %d cl=%d body=%q", tc.method, tc.path, resp.StatusCode, resp.ContentLength, body)
		}
	}
	if srv.accepts.Load() != 1 {
		t.Fatalf("accepts = %d, want 1", srv.accepts.Load())
	}
}

func TestCloseDelimitedBody(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		readReq(br)
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello "))
		time.Sleep(10 * time.Millisecond)
		c.Write([]byte("until close"))
	})
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	for i := 0; i < 2; i++ {
		resp, body := mustRT(t, u, newReq(t, "GET", "/"))
		if body != "hello until close" || resp.ContentLength != -1 || !resp.Close {
			t.Fatalf("body %q cl %d", body, resp.ContentLength)
		}
	}
	if srv.accepts.Load() != 2 {
		t.Fatal("close-delimited conn was reused")
	}
}

func TestMalformedResponses(t *testing.T) {
	for name, script := range map[string]string{
		"garbage":          "SSH-2.0-OpenSSH\r\n\r\n",
		"http2 status":     "HTTP/2.0 200 OK\r\n\r\n",
		"bad code":         "HTTP/1.1 2x0 OK\r\n\r\n",
		"no colon":         "HTTP/1.1 200 OK\r\nbroken header\r\n\r\n",
		"space before ':'": "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
		"two lengths":      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
		"bad length":       "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"obs-fold":         "HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\n\r\n",
		"gzip te":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"unasked 101":      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv := newRawServer(t, rawResponder(script))
			_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
			_, ep, err := u.RoundTrip(newReq(t, "GET", "/"))
			if kindOf(err) != Protocol || ep != srv.addr() {
				t.Fatalf("err = %v (ep %q), want Protocol", err, ep)
			}
		})
	}
	// A broken chunked body surfaces as a read error.
	srv := newRawServer(t, rawResponder("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	resp, _, err := u.RoundTrip(newReq(t, "GET", "/"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); !isProtoErr(err) {
		t.Fatalf("read err = %v", err)
	}
	resp.Body.Close()
}

func TestConnectFailed(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, u := oneUpstream(t, "http", nil, testOpts(), addr)
	_, ep, err := u.RoundTrip(newReq(t, "GET", "/"))
	if kindOf(err) != ConnectFailed || ep != addr {
		t.Fatalf("err = %v, want ConnectFailed", err)
	}
}

func TestNoEndpoints(t *testing.T) {
	_, u := oneUpstream(t, "http", nil, testOpts())
	if _, _, err := u.RoundTrip(newReq(t, "GET", "/")); kindOf(err) != NoEndpoints {
		t.Fatalf("err = %v", err)
	}
}

func TestTimeoutFromContextDeadline(t *testing.T) {
	closed := make(chan struct{})
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		readReq(br)
		br.ReadByte() // blocks until the client gives up
		close(closed)
	})
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := u.RoundTrip(newReq(t, "GET", "/").WithContext(ctx))
	if kindOf(err) != Timeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want Timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("upstream conn not closed after timeout")
	}
}

func TestCancelFreesConn(t *testing.T) {
	closed := make(chan struct{}, 2)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		line, _, _, _ := readReq(br)
		if strings.Contains(line, "/body") {
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial"))
		}
		br.ReadByte()
		closed <- struct{}{}
	})
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())

	// Cancel while waiting for the head.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, _, err := u.RoundTrip(newReq(t, "GET", "/head").WithContext(ctx))
	if !errors.Is(err, context.Canceled) || kindOf(err) != Reset {
		t.Fatalf("err = %v, want canceled", err)
	}
	<-closed

	// Cancel while reading the body.
	ctx, cancel = context.WithCancel(context.Background())
	resp, _, err := u.RoundTrip(newReq(t, "GET", "/body").WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	io.ReadFull(resp.Body, buf)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("body read survived cancel")
	}
	resp.Body.Close()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("upstream conn not closed after cancel")
	}
	if u.Endpoints()[0].pool.idleLen() != 0 {
		t.Fatal("canceled conn pooled")
	}
}

func TestEarlyCloseDoesNotReuse(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			line, _, _, ok := readReq(br)
			if !ok {
				return
			}
			if strings.Contains(line, "/big") {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"))
				c.Write(make([]byte, 100000))
			} else {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
			}
		}
	})
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	// Small body already buffered: Close skips it and reuses the conn.
	resp, _, err := u.RoundTrip(newReq(t, "GET", "/small"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	resp.Body.Close()
	mustRT(t, u, newReq(t, "GET", "/small"))
	if srv.accepts.Load() != 1 {
		t.Fatalf("accepts = %d after drained close", srv.accepts.Load())
	}
	// Big unread body: the conn is closed.
	resp, _, err = u.RoundTrip(newReq(t, "GET", "/big"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after close succeeded")
	}
	mustRT(t, u, newReq(t, "GET", "/small"))
	if srv.accepts.Load() != 2 {
		t.Fatalf("accepts = %d, want a new conn after early close", srv.accepts.Load())
	}
}

func TestUpgrade(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		_, hdr, _, ok := readReq(br)
		if !ok || hdr["upgrade"] != "websocket" {
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
			return
		}
		// Head and the first frame in one write: the client must not lose
		// bytes its reader buffered.
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nwelcome;"))
		buf := make([]byte, 64)
		for {
			n, err := br.Read(buf)
			if err != nil {
				return
			}
			c.Write(bytes.ToUpper(buf[:n]))
		}
	})
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.addr())
	req := newReq(t, "GET", "/ws")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, _, err := u.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatal("101 body is not an io.ReadWriteCloser")
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "welcome;" {
		t.Fatalf("read %q %v", buf, err)
	}
	for _, msg := range []string{"ping", "hello"} {
		rwc.Write([]byte(msg))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(rwc, got); err != nil || string(got) != strings.ToUpper(msg) {
			t.Fatalf("echo %q %v", got, err)
		}
	}
	rwc.Close()
	if u.Endpoints()[0].pool.idleLen() != 0 {
		t.Fatal("upgraded conn pooled")
	}
}

func TestRequestBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d:%d:%v", r.ContentLength, len(b), bytes.Equal(b, bytes.Repeat([]byte("x"), len(b))))
	}))
	defer srv.Close()
	_, u := oneUpstream(t, "http", nil, testOpts(), srv.Listener.Addr().String())
	for _, n := range []int{0, 1, 100, 8000, 8192, 9000, 300000} {
		req, _ := http.NewRequest("POST", "http://x/", bytes.NewReader(bytes.Repeat([]byte("x"), n)))
		if _, body := mustRT(t, u, req); body != fmt.Sprintf("%d:%d:true", n, n) {
			t.Fatalf("n=%d: %q", n, body)
		}
	}
	// A body shorter than ContentLength is a request-body error.
	req, _ := http.NewRequest("POST", "http://x/", io.NopCloser(strings.NewReader("abc")))
	req.ContentLength = 10
	if _, _, err := u.RoundTrip(req); err == nil {
		t.Fatal("short body accepted")
	}
}

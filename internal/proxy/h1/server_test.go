package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRequestValidation(t *testing.T) {
	addr, _ := start(t, echo, func(s *Server) { s.MaxHeaderBytes = 8 << 10 })
	big := strings.Repeat("a", 10<<10)
	cases := []struct {
		name, raw, status, body string
	}{
		{"simple", "GET /p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK", "GET /p?q=1 "},
		{"escaped path", "GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK", "GET /a b? "},
		{"absolute form", "GET http://abs.example/x HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK", "GET /x? "},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK", "OPTIONS *? "},
		{"bare LF", "GET / HTTP/1.1\nHost: h\n\n", "HTTP/1.1 200 OK", "GET /? "},
		{"leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK", ""},
		{"fixed body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 200 OK", "POST /? abc"},
		{"chunked body", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nT1: tv\r\n\r\n", "HTTP/1.1 200 OK", "POST /? abcde"},
		{"same CL twice", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz", "HTTP/1.1 200 OK", "POST /? z"},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"CL and TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"conflicting CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 400 Bad Request", ""},
		{"CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\na", "HTTP/1.1 400 Bad Request", ""},
		{"signed CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na", "HTTP/1.1 400 Bad Request", ""},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 501 Not Implemented", ""},
		{"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"space before colon", "GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"bad target", "GET nope HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"control in target", "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"HTTP/2.0 line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported", ""},
		{"garbage version", "GET / HTTX/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"unknown expect", "GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", "HTTP/1.1 417 Expectation Failed", ""},
		{"huge header", "GET / HTTP/1.1\r\nHost: h\r\nX: " + big + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large", ""},
		{"1.0 no host", "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK", "GET /? "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, addr, tc.raw)
			if statusOf(got) != tc.status {
				t.Fatalf("status %q, want %q\n%s", statusOf(got), tc.status, got)
			}
			if tc.body != "" && !strings.HasSuffix(got, tc.body) {
				t.Fatalf("body: %q", got)
			}
			if tc.name == "chunked body" && !strings.Contains(got, "X-Trailer: tv") {
				t.Fatalf("request trailer lost: %q", got)
			}
		})
	}
}

func TestPipeliningAndKeepAlive(t *testing.T) {
	addr, _ := start(t, echo)
	got := exchange(t, addr, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"+
		"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy"+
		// The handler ignores this body: it is discarded before the next request.
		"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n"+
		"GET /4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"+
		"GET /5 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(strings.NewReader(got))
	for _, want := range []string{"GET /1? ", "POST /2? xy", "GET /3? ", "GET /4? "} {
		resp, b := readResp(t, br, "GET")
		if b != want {
			t.Fatalf("got %q want %q", b, want)
		}
		if want == "GET /4? " && !resp.Close {
			t.Fatal("Connection: close not echoed")
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("served after Connection: close: %q", rest)
	}
}

func TestUnreadBodyDiscarded(t *testing.T) {
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	got := exchange(t, addr, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"+
		"GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
	if strings.Count(got, "HTTP/1.1 200 OK") != 3 || !strings.HasSuffix(got, "/c") {
		t.Fatalf("%q", got)
	}
}

func TestHTTP10(t *testing.T) {
	addr, _ := start(t, echo)
	got := exchange(t, addr, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.0\r\n\r\n")
	if strings.Count(got, "HTTP/1.0 200 OK") != 2 || !strings.Contains(got, "Connection: keep-alive") ||
		!strings.Contains(got, "Connection: close") || strings.Contains(got, "/c") {
		t.Fatalf("%q", got)
	}
	// A body of unknown length in 1.0 is delimited by closing.
	addr, _ = start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
	}))
	got = exchange(t, addr, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if strings.Contains(got, "chunked") || !strings.HasSuffix(got, "\r\n\r\npart1part2") {
		t.Fatalf("%q", got)
	}
}

func TestExpectContinue(t *testing.T) {
	addr, _ := start(t, echo)
	c := dial(t, addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("%q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "data")
	if _, b := readResp(t, br, "POST"); b != "POST /up? data" {
		t.Fatal(b)
	}

	// A handler that answers without reading gets no 100 and the connection closes.
	addr, _ = start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	got := exchange(t, addr, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if strings.Contains(got, "100 Continue") || statusOf(got) != "HTTP/1.1 403 Forbidden" || !strings.Contains(got, "Connection: close") {
		t.Fatalf("%q", got)
	}
}

func TestNoBodyResponses(t *testing.T) {
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
			if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrBodyNotAllowed) {
				panic("204 body allowed")
			}
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "0123456789")
		}
	}))
	got := exchange(t, addr, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /204 HTTP/1.1\r\nHost: h\r\n\r\n"+
		"GET /304 HTTP/1.1\r\nHost: h\r\n\r\nGET /end HTTP/1.1\r\nHost: h\r\n\r\n")
	want := []string{"HTTP/1.1 200 OK", "HTTP/1.1 204 No Content", "HTTP/1.1 304 Not Modified", "HTTP/1.1 200 OK"}
	parts := strings.Split(got, "\r\n\r\n")
	if len(parts) != 5 || parts[4] != "0123456789" {
		t.Fatalf("%q", got)
	}
	for i, w := range want {
		if !strings.Contains(parts[i], w) {
			t.Fatalf("response %d: %q", i, parts[i])
		}
	}
	if !strings.Contains(parts[0], "Content-Length: 10") || strings.Contains(parts[1], "Content-Length") {
		t.Fatalf("%q", got)
	}
}

func TestTrailersAndChunked(t *testing.T) {
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/declared":
			w.Header().Set("Trailer", "X-Sum")
			w.WriteHeader(200)
			io.WriteString(w, "abc")
			w.(http.Flusher).Flush()
			io.WriteString(w, "def")
			w.Header().Set("X-Sum", "42")
		case "/prefix":
			io.WriteString(w, "ghi")
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		case "/big":
			w.Write(make([]byte, 200<<10))
		}
	}))
	c := dial(t, addr)
	io.WriteString(c, "GET /declared HTTP/1.1\r\nHost: h\r\n\r\nGET /prefix HTTP/1.1\r\nHost: h\r\n\r\nGET /big HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	resp, b := readResp(t, br, "GET")
	if b != "abcdef" || resp.Trailer.Get("X-Sum") != "42" || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("%q %v %v", b, resp.Trailer, resp.TransferEncoding)
	}
	resp, b = readResp(t, br, "GET")
	if b != "ghi" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Fatalf("%q %v", b, resp.Trailer)
	}
	resp, b = readResp(t, br, "GET")
	if len(b) != 200<<10 || resp.ContentLength != -1 {
		t.Fatalf("big: %d %d", len(b), resp.ContentLength)
	}
}

func TestContentLengthMismatch(t *testing.T) {
	var werr atomic.Value
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		_, err := io.WriteString(w, "12345")
		werr.Store(err)
	}))
	got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if err, _ := werr.Load().(error); !errors.Is(err, http.ErrContentLength) {
		t.Fatalf("write error %v", err)
	}
	if strings.Count(got, "HTTP/1.1") != 1 || !strings.Contains(got, "Connection: close") {
		t.Fatalf("%q", got)
	}
}

func TestFlushStreams(t *testing.T) {
	step := make(chan struct{})
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		if err := http.NewResponseController(w).Flush(); err != nil {
			panic(err)
		}
		<-step
		io.WriteString(w, "second")
	}))
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("%q %v", buf, err)
	}
	close(step)
	if rest, _ := io.ReadAll(resp.Body); string(rest) != "second" {
		t.Fatalf("%q", rest)
	}
}

func TestInformational(t *testing.T) {
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</s.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusAccepted)
		w.WriteHeader(http.StatusTeapot) // ignored
	}))
	got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 103 Early Hints\r\nLink: ") || !strings.Contains(got, "HTTP/1.1 202 Accepted") || strings.Contains(got, "418") {
		t.Fatalf("%q", got)
	}
}

func TestHijack(t *testing.T) {
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		// Bytes sent right after the head are still in the reader.
		b := make([]byte, 4)
		io.ReadFull(brw, b)
		conn.Write(append([]byte("echo:"), b...))
	}))
	got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nping")
	if !strings.HasPrefix(got, "HTTP/1.1 101") || !strings.HasSuffix(got, "\r\n\r\necho:ping") {
		t.Fatalf("%q", got)
	}
}

func TestPanics(t *testing.T) {
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}))
	for _, p := range []string{"/abort", "/boom"} {
		if got := exchange(t, addr, "GET "+p+" HTTP/1.1\r\nHost: h\r\n\r\n"); got != "" {
			t.Fatalf("%s: %q", p, got)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	addr, _ := start(t, echo, func(s *Server) { s.IdleTimeout = 100 * time.Millisecond })
	c := dial(t, addr)
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

func TestClientGoneCancelsContext(t *testing.T) {
	done := make(chan error, 1)
	addr, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			done <- nil
		case <-time.After(3 * time.Second):
			done <- errors.New("context not cancelled")
		}
	}))
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestShutdownWaitsForActive(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	addr, s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	}))
	idle := dial(t, addr)
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The idle connection is closed right away.
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle conn: %v", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	if !strings.Contains(string(got), "Connection: close") || !strings.HasSuffix(string(got), "done") {
		t.Fatalf("%q", got)
	}
	// And a timed-out Shutdown reports ctx's error.
}

func TestFallbackH2Preface(t *testing.T) {
	got := make(chan string, 1)
	addr, _ := start(t, echo, func(s *Server) {
		s.Fallback = func(c net.Conn) {
			defer c.Close()
			b := make([]byte, len(h2Preface)+4)
			io.ReadFull(c, b)
			got <- string(b)
		}
	})
	c := dial(t, addr)
	io.WriteString(c, h2Preface[:10])
	time.Sleep(10 * time.Millisecond)
	io.WriteString(c, h2Preface[10:]+"tail")
	if g := <-got; g != h2Preface+"tail" {
		t.Fatalf("%q", g)
	}
	// A short HTTP/1 request starting with P is not mistaken for the preface.
	if r := exchange(t, addr, "PUT / HTTP/1.0\r\n\r\n"); statusOf(r) != "HTTP/1.0 200 OK" {
		t.Fatalf("%q", r)
	}
}

func TestConnState(t *testing.T) {
	var states []http.ConnState
	ch := make(chan http.ConnState, 16)
	addr, _ := start(t, echo, func(s *Server) {
		s.ConnState = func(_ net.Conn, st http.ConnState) { ch <- st }
	})
	exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	for st := range ch {
		states = append(states, st)
		if st == http.StateClosed {
			break
		}
	}
	want := []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateClosed}
	if len(states) != len(want) {
		t.Fatalf("%v", states)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("%v", states)
		}
	}
}

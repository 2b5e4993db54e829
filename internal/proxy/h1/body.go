package h1

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// setBody validates the framing fields of req (RFC 9112 §6) and sets its
// Body, ContentLength and TransferEncoding.
func (c *conn) setBody(req *http.Request) error {
	h := req.Header
	te, cl := h["Transfer-Encoding"], h["Content-Length"]
	req.Body = http.NoBody
	var b *body
	switch {
	case len(te) > 0:
		if len(cl) > 0 {
			return bad("both Content-Length and Transfer-Encoding")
		}
		if req.ProtoMinor == 0 {
			return bad("Transfer-Encoding in HTTP/1.0")
		}
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return &protoError{http.StatusNotImplemented, "unsupported transfer coding"}
		}
		delete(h, "Transfer-Encoding")
		req.TransferEncoding = chunkedTE
		req.ContentLength = -1
		b = &body{c: c, req: req, chunked: true, cr: httputil.NewChunkedReader(c.br)}
	case len(cl) > 0:
		for _, v := range cl[1:] {
			if v != cl[0] {
				return bad("conflicting Content-Length")
			}
		}
		n, err := parseLength(cl[0])
		if err != nil {
			return err
		}
		if len(cl) > 1 {
			h["Content-Length"] = cl[:1]
		}
		req.ContentLength = n
		if n > 0 {
			b = &body{c: c, req: req, remain: n}
		}
	}
	if ex, ok := h["Expect"]; ok && req.ProtoMinor == 1 {
		if len(ex) != 1 || !strings.EqualFold(ex[0], "100-continue") {
			return &protoError{http.StatusExpectationFailed, "unsupported expectation"}
		}
		delete(h, "Expect")
		if b != nil {
			b.expect = true
		}
	}
	if b != nil {
		req.Body = b
	}
	return nil
}

var chunkedTE = []string{"chunked"}[:1:1]

func parseLength(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, bad("invalid Content-Length")
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, bad("invalid Content-Length")
		}
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n, nil
}

// body is a request body read from the connection. Its methods lock because
// an upstream client may read or close it from another goroutine, even after
// the handler returned (reads then fail).
type body struct {
	mu      sync.Mutex
	c       *conn
	w       *response
	req     *http.Request
	remain  int64     // bytes left of a Content-Length body
	chunked bool      // Transfer-Encoding: chunked
	cr      io.Reader // chunk decoder
	expect  bool      // client waits for 100 Continue
	eof     bool      // fully read (with trailers)
	closed  bool      // the handler returned: the connection moved on
	err     error     // sticky read error
}

var errBodyClosed = http.ErrBodyReadAfterClose

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, errBodyClosed
	case b.err != nil:
		return 0, b.err
	case b.eof:
		return 0, io.EOF
	}
	if b.expect {
		b.expect = false
		if b.w != nil {
			b.w.writeContinue()
		}
	}
	n, err := b.read(p)
	if err == io.EOF {
		b.eof = true
		b.c.bg.arm(b.c)
	} else if err != nil {
		b.err = err
	}
	return n, err
}

func (b *body) read(p []byte) (int, error) {
	if !b.chunked {
		if b.remain == 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err := b.c.br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	n, err := b.cr.Read(p)
	if err == io.EOF {
		if terr := b.readTrailers(); terr != nil {
			return n, terr
		}
	}
	return n, err
}

// readTrailers reads the trailer section after the last chunk into req.Trailer.
func (b *body) readTrailers() error {
	total := 0
	for {
		line, err := b.c.br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		total += len(line)
		if total > 64<<10 {
			return errors.New("h1: request trailers too large")
		}
		s := strings.TrimRight(string(line), "\r\n")
		if s == "" {
			return nil
		}
		k, v, ok := strings.Cut(s, ":")
		if !ok || !validToken(k) || !validValue(trimOWS(v)) {
			return errors.New("h1: malformed request trailer")
		}
		k = canonicalKey(k)
		switch k {
		case "Content-Length", "Transfer-Encoding", "Host", "Trailer":
			continue
		}
		if b.req.Trailer == nil {
			b.req.Trailer = http.Header{}
		}
		b.req.Trailer[k] = append(b.req.Trailer[k], trimOWS(v))
	}
}

func (b *body) Close() error { return nil }

// reusable reports whether the connection can outlive this body: it was
// read, or what is left can be discarded.
func (b *body) reusable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof || (b.err == nil && !b.expect && (b.chunked || b.remain <= maxDiscard))
}

// finish ends the body when the handler returned: the rest is discarded when
// small, so the connection can carry another request. It reports whether the
// connection is still usable.
func (b *body) finish() bool {
	if !b.mu.TryLock() {
		// Another goroutine is blocked reading the body: bound its wait.
		_ = b.c.nc.SetReadDeadline(time.Now().Add(time.Second))
		b.mu.Lock()
		_ = b.c.nc.SetReadDeadline(time.Time{})
	}
	defer b.mu.Unlock()
	b.closed = true
	if b.eof {
		return true
	}
	if b.err != nil || b.expect {
		return false // broken, or a client that may never send the body
	}
	if !b.chunked && b.remain > maxDiscard {
		return false
	}
	if t := b.c.srv.IdleTimeout; t > 0 {
		_ = b.c.nc.SetReadDeadline(time.Now().Add(t))
		defer b.c.nc.SetReadDeadline(time.Time{})
	}
	b.closed = false
	n, err := io.CopyN(io.Discard, onlyReader{b}, maxDiscard+1)
	b.closed = true
	return err == io.EOF && n <= maxDiscard
}

// onlyReader calls read without the lock (finish holds it).
type onlyReader struct{ b *body }

func (r onlyReader) Read(p []byte) (int, error) {
	n, err := r.b.read(p)
	if err == io.EOF {
		r.b.eof = true
	}
	return n, err
}

// bgDelay is how long a handler runs before the server starts watching the
// connection for the client leaving. Short requests (the vast majority) never
// pay for the extra read and goroutine switch.
const bgDelay = 50 * time.Millisecond

// bgRead watches an active connection, whose request body is fully read, for
// the client going away, and cancels the request's context when it does.
type bgRead struct {
	mu      sync.Mutex
	armed   bool // the current request's handler runs and the body is done
	running bool
	done    chan struct{}
	timer   *time.Timer
	cancel  context.CancelFunc
	gone    bool // the client left (valid after disarm)
}

// arm starts the delay after which the connection is watched.
func (g *bgRead) arm(c *conn) {
	g.mu.Lock()
	if !g.armed {
		g.armed = true
		if g.timer == nil {
			g.timer = time.AfterFunc(bgDelay, func() { g.watch(c) })
		} else {
			g.timer.Reset(bgDelay)
		}
	}
	g.mu.Unlock()
}

// watch runs on the timer's goroutine: it blocks in a read until the client
// sends more (pipelining), leaves, or disarm interrupts it.
func (g *bgRead) watch(c *conn) {
	g.mu.Lock()
	if !g.armed || g.running {
		g.mu.Unlock()
		return
	}
	g.running = true
	g.done = make(chan struct{})
	cancel := g.cancel
	g.mu.Unlock()
	_, err := c.br.Peek(1)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		g.gone = true
		cancel()
	}
	close(g.done)
}

// disarm stops watching and waits for a read in progress to end. It must be
// called by the connection's goroutine before it touches the reader again.
func (g *bgRead) disarm(c *conn) {
	g.mu.Lock()
	g.armed = false
	running, done := g.running, g.done
	g.running = false
	g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
	}
	if running {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		<-done
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// Package h1 is a small HTTP/1.1 server for plaintext connections that serves a
// standard http.Handler.
//
// It exists for CPU per request: net/http's server writes through a fixed 4 KiB
// buffer (a 10 KB response costs three or four write calls) and starts a
// background read per request. Here the response head and body are gathered in
// one pooled buffer and sent with a single write when the handler returns, when
// the buffer fills, or on Flush; a background read (to notice a client that
// leaves) starts only for requests that run longer than a few milliseconds.
//
// Connections that open with the HTTP/2 preface (h2c with prior knowledge) are
// handed to Server.Fallback; TLS is not handled here.
package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.x on connections given to ServeConn. The zero value is
// usable once Handler is set; fields must not change after the first ServeConn.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request head once its first byte
	// arrived. Zero means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection (and for the first one). Zero means no limit.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line plus header fields; larger heads
	// are answered 431. Zero means 1 MiB, like net/http.
	MaxHeaderBytes int
	// ConnState, when set, is called on the same transitions net/http reports
	// (New, Active, Idle, Hijacked, Closed).
	ConnState func(net.Conn, http.ConnState)
	// Fallback receives connections that open with the HTTP/2 client preface,
	// wrapped so the bytes already read are read again. Without it they are
	// closed.
	Fallback func(net.Conn)
	// Logger receives handler panics and similar server faults. Default: discard.
	Logger *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown atomic.Bool
}

// maxDiscard is how much unread request body the server reads and throws away
// to keep a connection alive; beyond it the connection is closed.
const maxDiscard = 256 << 10

// h2Preface is what an HTTP/2 client sends first (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// ServeConn runs c's keep-alive loop in the calling goroutine and closes c when
// it ends (unless a handler hijacked it or it went to Fallback).
func (s *Server) ServeConn(c net.Conn) {
	cn := &conn{srv: s, nc: c, remote: c.RemoteAddr().String()}
	cn.br = readerPool.Get().(*bufio.Reader)
	cn.br.Reset(c)
	if !s.track(cn, true) {
		_ = c.Close()
		return
	}
	defer s.track(cn, false)
	s.setState(c, http.StateNew)
	cn.serve()
}

func (s *Server) setState(c net.Conn, st http.ConnState) {
	if s.ConnState != nil {
		s.ConnState(c, st)
	}
}

// track adds or removes a connection; adding fails once Shutdown started.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shutdown.Load() {
			return false
		}
		if s.conns == nil {
			s.conns = map[*conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	return true
}

// Shutdown stops serving new requests: idle connections are closed at once,
// active ones right after their current response. It waits until none is
// left or ctx ends, and then returns ctx's error. Hijacked connections are
// not tracked.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.wakeIdle()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			s.wakeIdle() // connections that went idle since
		}
	}
}

// wakeIdle interrupts the read of every connection waiting for a request, so
// its loop sees the shutdown and ends.
func (s *Server) wakeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// Close closes every tracked connection now and stops accepting new ones.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.nc.Close()
	}
	return nil
}

var aLongTimeAgo = time.Unix(1, 0)

func (s *Server) logf(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Error(msg, args...)
	}
}

// conn is the state of one client connection.
type conn struct {
	srv    *Server
	nc     net.Conn
	br     *bufio.Reader
	remote string
	idle   atomic.Bool // waiting for a request head (Shutdown may interrupt)
	served int         // requests served so far
	bg     bgRead
	w      response // reused for every request of the connection
	hijack bool
	tmpl   http.Request // request being parsed; copied out by WithContext
}

// serve is the keep-alive loop.
func (c *conn) serve() {
	s := c.srv
	defer func() {
		if c.hijack {
			return
		}
		if c.br != nil {
			c.br.Reset(nil)
			readerPool.Put(c.br)
			c.br = nil
		}
		_ = c.nc.Close()
		s.setState(c.nc, http.StateClosed)
	}()
	for {
		if s.shutdown.Load() {
			return
		}
		req, err := c.readRequest()
		if err != nil {
			c.answerError(err)
			return
		}
		if req == nil {
			return // fallback or clean end
		}
		if !c.serveOne(req) || c.hijack {
			return
		}
		s.setState(c.nc, http.StateIdle)
	}
}

// answerError replies to a request that could not be read, when there is a
// status to send (a peer that just left gets nothing).
func (c *conn) answerError(err error) {
	var pe *protoError
	if !errors.As(err, &pe) {
		return
	}
	msg := pe.status.text()
	b := make([]byte, 0, 160)
	b = append(b, "HTTP/1.1 "...)
	b = append(b, msg...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = appendInt(b, int64(len(msg)+1))
	b = append(b, "\r\n\r\n"...)
	b = append(b, msg...)
	b = append(b, '\n')
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.nc.Write(b)
}

// serveOne runs the handler for req and finishes the response. It reports
// whether the connection may serve another request.
func (c *conn) serveOne(tmpl *http.Request) (keep bool) {
	s := c.srv
	w := &c.w
	ctx, cancel := context.WithCancel(context.Background())
	c.bg.mu.Lock()
	c.bg.cancel, c.bg.gone = cancel, false
	c.bg.mu.Unlock()
	req := tmpl.WithContext(ctx) // the one Request allocation
	*tmpl = http.Request{}
	w.reset(c, req)
	rb, _ := req.Body.(*body)
	if rb != nil {
		rb.mu.Lock()
		rb.w, rb.req = w, req
		rb.mu.Unlock()
	} else {
		c.bg.arm(c) // nothing left to read: watch for the client leaving
	}
	ok := c.runHandler(w, req)
	c.bg.disarm(c)
	cancel()
	if c.hijack {
		return false
	}
	if !ok {
		w.closeAfter = true
		return false
	}
	if rb != nil && !rb.reusable() {
		w.closeAfter = true
	}
	if err := w.finish(); err != nil || w.closeAfter {
		return false
	}
	if rb != nil && !rb.finish() {
		return false
	}
	if c.bg.gone {
		return false
	}
	return !s.shutdown.Load()
}

// runHandler calls the handler and reports false if it panicked.
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			ok = false
			if p != http.ErrAbortHandler {
				c.srv.logf("h1: panic serving request", "remote", c.remote, "panic", p)
			}
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

// peekedConn replays the bytes a bufio.Reader already took from the socket.
type peekedConn struct {
	net.Conn
	r io.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// fallback hands the connection to Server.Fallback.
func (c *conn) fallback() {
	c.hijack = true
	c.srv.setState(c.nc, http.StateHijacked)
	if c.srv.Fallback == nil {
		_ = c.nc.Close()
		return
	}
	c.srv.Fallback(&peekedConn{Conn: c.nc, r: c.br})
	c.br = nil
}

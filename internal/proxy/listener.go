package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/proxy/h1"
	"portico.dev/portico/internal/proxy/proxyproto"
)

// httpListener is one bound socket and its server. It outlives swaps: only the
// state pointer changes.
//
// Plaintext connections are served by h1 (Portico's own HTTP/1.1 server, which
// sends a response in one write); TLS connections and h2c (HTTP/2 with prior
// knowledge) go to a net/http server through a connQueue.
type httpListener struct {
	rt     *Runtime
	name   string
	ln     net.Listener // the bound socket
	queue  *connQueue   // connections for srv
	srv    *http.Server
	h1     *h1.Server
	state  atomic.Pointer[listenerState]
	proxy  atomic.Pointer[proxyproto.Policy] // non-nil: read a PROXY header first
	done   chan struct{}                     // closed when srv.Serve returns
	accept chan struct{}                     // closed when the accept loop returns
}

// bind opens the socket of a new listener. The error names the Gateway listeners
// that asked for the socket, since that is what a user can fix.
func (rt *Runtime) bind(st *listenerState) (*httpListener, error) {
	addr := net.JoinHostPort(st.address, strconv.Itoa(st.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: listener %q (gateway %s): cannot listen on %s: %w",
			st.name, strings.Join(st.gateways, ", "), addr, err)
	}
	hl := &httpListener{rt: rt, name: st.name, ln: ln, done: make(chan struct{}), accept: make(chan struct{})}
	hl.state.Store(st)
	hl.queue = newConnQueue(ln.Addr())
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	hl.srv = &http.Server{
		Handler:           hl,
		Protocols:         &p,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnState:         hl.connState,
		// Advertise the RFC 9113 default frame size (net/http would offer 1 MiB):
		// peers that assume the default are then held to it, and one frame can
		// never make the server buffer more than 16 KiB.
		HTTP2:    &http.HTTP2Config{MaxReadFrameSize: 16 << 10},
		ErrorLog: log.New(serverErrorWriter{rt.log, st.name}, "", 0),
	}
	hl.h1 = &h1.Server{
		Handler:           hl,
		ReadHeaderTimeout: hl.srv.ReadHeaderTimeout,
		IdleTimeout:       hl.srv.IdleTimeout,
		MaxHeaderBytes:    hl.srv.MaxHeaderBytes,
		ConnState:         hl.connState,
		Fallback:          hl.queue.push,
		Logger:            rt.log.With("listener", st.name),
	}
	return hl, nil
}

func (hl *httpListener) start() {
	go func() {
		defer close(hl.done)
		if err := hl.srv.Serve(hl.queue); err != nil && !errors.Is(err, http.ErrServerClosed) {
			hl.rt.log.Error("listener stopped", "listener", hl.name, "error", err)
		}
	}()
	go hl.acceptLoop()
}

// shutdown stops accepting, lets both servers finish their requests until ctx
// ends, then closes what is left. It returns ctx's error if it cut requests.
func (hl *httpListener) shutdown(ctx context.Context) error {
	_ = hl.ln.Close()
	<-hl.accept
	errs := make(chan error, 1)
	go func() { errs <- hl.h1.Shutdown(ctx) }()
	err := hl.srv.Shutdown(ctx)
	if err != nil {
		_ = hl.srv.Close()
	}
	if e := <-errs; e != nil {
		_ = hl.h1.Close()
		if err == nil {
			err = e
		}
	}
	<-hl.done
	return err
}

func (hl *httpListener) connState(_ net.Conn, s http.ConnState) {
	m := hl.rt.opts.Metrics
	switch s {
	case http.StateNew:
		m.ConnOpened()
	case http.StateClosed, http.StateHijacked:
		m.ConnClosed()
	}
}

// acceptLoop decides per accepted connection, from the state in force at that
// moment, whether to terminate TLS. A swap can therefore turn a port from HTTP to
// HTTPS (or back) without rebinding it: new connections follow the new protocol,
// open ones keep theirs. The TLS handshake runs later, in the connection's own
// goroutine (http.Server starts it), so accepting never waits on a slow client.
func (hl *httpListener) acceptLoop() {
	defer close(hl.accept)
	var delay time.Duration
	for {
		c, err := hl.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			hl.rt.log.Debug("accept failed", "listener", hl.name, "error", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if pol := hl.proxy.Load(); pol != nil {
			go hl.acceptProxied(c, pol)
			continue
		}
		hl.serveConn(c, true)
	}
}

// serveConn hands c to the TLS server or to h1, per the state in force; async
// runs h1 in a new goroutine (the accept loop must not block).
func (hl *httpListener) serveConn(c net.Conn, async bool) {
	if cfg := hl.state.Load().tlsConfig; cfg != nil {
		hl.queue.push(tls.Server(c, cfg))
		return
	}
	if async {
		go hl.h1.ServeConn(c)
		return
	}
	hl.h1.ServeConn(c)
}

// connQueue is the net.Listener http.Server serves: it yields the connections
// pushed to it (TLS, and h2c handed over by h1).
type connQueue struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{ch: make(chan net.Conn, 16), closed: make(chan struct{}), addr: addr}
}

// push queues c for Accept, or closes it once the queue is closed.
func (q *connQueue) push(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.closed:
		_ = c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// serverErrorWriter routes http.Server's own log lines (TLS handshake failures,
// malformed requests) to the structured logger at debug level: they are caused by
// clients and would flood an operator's log otherwise.
type serverErrorWriter struct {
	log      *slog.Logger
	listener string
}

func (w serverErrorWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)), "listener", w.listener)
	return len(p), nil
}

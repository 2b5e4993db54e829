package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// httpListener is one bound socket and its server. It outlives swaps: only the
// state pointer changes.
type httpListener struct {
	rt    *Runtime
	name  string
	ln    net.Listener
	srv   *http.Server
	state atomic.Pointer[listenerState]
	done  chan struct{} // closed when Serve returns
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
	hl := &httpListener{rt: rt, name: st.name, done: make(chan struct{})}
	hl.state.Store(st)
	hl.ln = &switchListener{Listener: ln, hl: hl}
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
	return hl, nil
}

func (hl *httpListener) start() {
	go func() {
		defer close(hl.done)
		if err := hl.srv.Serve(hl.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			hl.rt.log.Error("listener stopped", "listener", hl.name, "error", err)
		}
	}()
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

// switchListener decides per accepted connection, from the state in force at that
// moment, whether to terminate TLS. A swap can therefore turn a port from HTTP to
// HTTPS (or back) without rebinding it: new connections follow the new protocol,
// open ones keep theirs. The handshake itself runs later, in the connection's own
// goroutine (http.Server starts it), so Accept never blocks on a slow client.
type switchListener struct {
	net.Listener
	hl *httpListener
}

func (l *switchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if cfg := l.hl.state.Load().tlsConfig; cfg != nil {
		return tls.Server(c, cfg), nil
	}
	return c, nil
}

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

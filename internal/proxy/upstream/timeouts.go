package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Sentinels wrapped in Timeout errors, so callers can tell which timeout
// expired (errors.Is). A context deadline (per-try or request timeout) is
// reported as Timeout wrapping context.DeadlineExceeded instead.
var (
	// ErrConnectTimeout: the TCP connect and TLS handshake took longer than
	// the upstream's connect timeout; the request was not sent.
	ErrConnectTimeout = errors.New("connect timeout")
	// ErrResponseHeaderTimeout: the response head did not arrive within the
	// upstream's response header timeout after the request was written.
	ErrResponseHeaderTimeout = errors.New("response header timeout")
)

// timeouts are an upstream's connection timeouts with defaults applied.
type timeouts struct {
	connect time.Duration // TCP connect + TLS handshake
	idle    time.Duration // idle pooled connections
	header  time.Duration // request written → response head read (0: none)
}

func (u *Upstream) initTimeouts() {
	t := u.def.Timeouts
	u.to = timeouts{
		connect: msOr(t.ConnectMillis, u.opts.DialTimeout),
		idle:    msOr(t.IdleMillis, u.opts.IdleConnTimeout),
		header:  time.Duration(max(t.ResponseHeaderMillis, 0)) * time.Millisecond,
	}
}

// connect opens a connection to addr and runs the TLS handshake when tc is
// set, both within the connect timeout. With a max-connections breaker the
// connection is counted until closed; reserved says connSlot already took
// the slot (it is given back if the dial fails). Errors are a *dialError
// (ConnectFailed) or a Timeout *Error wrapping ErrConnectTimeout.
func (u *Upstream) connect(ctx context.Context, addr string, tc *tls.Config, reserved bool) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, u.to.connect)
	defer cancel()
	nc, err := u.dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		if reserved {
			u.brk.unreserve()
		}
		return nil, u.dialFailed(ctx, dctx, addr, err)
	}
	if b := u.brk; b.countsConns() {
		if !reserved {
			b.connOpened()
		}
		nc = &countedConn{Conn: nc, b: b}
	}
	if tc == nil {
		return nc, nil
	}
	t := tls.Client(nc, tc)
	if err := t.HandshakeContext(dctx); err != nil {
		nc.Close()
		return nil, u.dialFailed(ctx, dctx, addr, err)
	}
	return t, nil
}

func (u *Upstream) dialFailed(ctx, dctx context.Context, addr string, err error) error {
	var ne net.Error
	if ctx.Err() == nil && (dctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Kind: Timeout, Endpoint: addr, Err: fmt.Errorf("%w (%s): %v", ErrConnectTimeout, u.to.connect, err)}
	}
	return &dialError{err}
}

// headerDeadline arms the response header timeout on c once the request is
// written; it reports whether it did.
func (c *conn) headerDeadline(ctx context.Context) bool {
	d := c.ep.up.to.header
	if d <= 0 {
		return false
	}
	at := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(at) {
		return false // the context expires first and is reported as such
	}
	c.nc.SetReadDeadline(at)
	c.deadline = true
	return true
}

// clearHeaderDeadline restores the context's deadline (or none) for the body.
func (c *conn) clearHeaderDeadline(ctx context.Context) {
	d, _ := ctx.Deadline() // zero: no deadline
	c.nc.SetReadDeadline(d)
}

// headerTimeoutErr reports err as an expired response header timeout.
func headerTimeoutErr(addr string, d time.Duration) error {
	return &Error{Kind: Timeout, Endpoint: addr, Err: fmt.Errorf("%w (%s)", ErrResponseHeaderTimeout, d)}
}

// h2HeaderTimeout tags the transport's response-header timeout error.
func (u *Upstream) h2HeaderTimeout(req *http.Request, addr string, err error) error {
	var ne net.Error
	if u.to.header > 0 && req.Context().Err() == nil && errors.As(err, &ne) && ne.Timeout() {
		var de *dialError
		var ue *Error
		if !errors.As(err, &de) && !errors.As(err, &ue) {
			return headerTimeoutErr(addr, u.to.header)
		}
	}
	return nil
}

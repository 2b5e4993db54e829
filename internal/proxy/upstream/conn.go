package upstream

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"
)

const (
	// readBufSize holds a typical response (head and a body of ~10 KB) in one read(2).
	readBufSize  = 16 << 10
	writeBufSize = 8 << 10
	copyBufSize  = 32 << 10
)

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}
	copyPool   = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

	// aLongTimeAgo is a deadline in the past: setting it wakes blocked I/O.
	aLongTimeAgo = time.Unix(1, 0)
)

// conn is one HTTP/1.1 connection to an endpoint with its buffers. It is
// owned by one request at a time; idle conns sit in their endpoint's pool.
type conn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	ep *Endpoint

	idleAt   time.Time
	deadline bool   // a deadline is set on nc
	abort    func() // bound once: wakes blocked I/O (context.AfterFunc target)
	head     []byte // response head scratch, reused per request
	lines    []int  // line end offsets into head
}

func newConn(nc net.Conn, ep *Endpoint) *conn {
	c := &conn{nc: nc, ep: ep}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(nc)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(nc)
	c.abort = c.wake
	return c
}

func (c *conn) wake() { c.nc.SetDeadline(aLongTimeAgo) }

// close closes the connection and recycles its buffers. Only the goroutine
// that owns c may call it (see body.Close for the concurrent case).
func (c *conn) close() {
	c.nc.Close()
	c.release()
}

func (c *conn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.br, c.bw = nil, nil
	}
}

// dialError marks errors from dialing or the TLS handshake.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial opens a new connection to ep (TLS when the upstream has a config).
// reserved says a circuit-breaker connection slot is already held.
func (u *Upstream) dial(ctx context.Context, ep *Endpoint, reserved bool) (net.Conn, error) {
	return u.connect(ctx, ep.Address, ep.tlsConf, reserved)
}

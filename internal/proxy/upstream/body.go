package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// errBodyClosed is returned by Read after Close.
var errBodyClosed = errors.New("upstream: read on closed response body")

const (
	modeFixed = iota + 1
	modeChunked
	modeEOF
)

// body is a response body read straight from the connection's buffer. At
// clean EOF the connection goes back to its pool (unless the upstream asked
// to close); on an error or an early Close it is closed, never reused with
// unread bytes. Read must not be called concurrently with itself; Close may
// be called from another goroutine to abort a blocked Read.
type body struct {
	c      *conn
	resp   *http.Response
	stop   func() bool // releases the context.AfterFunc hook
	mode   uint8
	keep   bool  // connection reusable after a clean EOF
	remain int64 // fixed: bytes left; chunked: bytes left in the chunk
	crlf   bool  // chunked: CRLF after chunk data still to consume
	err    error // sticky result after finish
	state  atomic.Int32
	busy   atomic.Bool
}

const (
	stActive = iota
	stDone
)

func (b *body) Read(p []byte) (int, error) {
	if b.state.Load() != stActive {
		if b.err == nil {
			return 0, errBodyClosed
		}
		return 0, b.err
	}
	b.busy.Store(true)
	n, err := b.read(p)
	b.busy.Store(false)
	if err != nil && b.state.Load() == stActive {
		if err == io.EOF {
			b.finish(true)
		} else {
			b.fail(err)
		}
	}
	if err != nil && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *body) read(p []byte) (int, error) {
	br := b.c.br
	switch b.mode {
	case modeFixed:
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err := br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	case modeChunked:
		if b.remain == 0 {
			if err := b.nextChunk(); err != nil {
				return 0, err
			}
		}
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err := br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			b.crlf = true
			if b.tryEOF() {
				return n, io.EOF
			}
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if n > 0 && err == nil {
			return n, nil
		}
		return n, err
	default: // modeEOF: the body ends when the upstream closes
		return br.Read(p)
	}
}

var lastChunk = []byte("0\r\n\r\n")

// tryEOF consumes the end of a chunked body when it is already buffered, so
// the connection returns to the pool without waiting for another Read.
func (b *body) tryEOF() bool {
	br := b.c.br
	skip := 0
	if b.crlf {
		skip = 2
	}
	if br.Buffered() < skip+len(lastChunk) {
		return false
	}
	buf, _ := br.Peek(skip + len(lastChunk))
	if (skip == 2 && (buf[0] != '\r' || buf[1] != '\n')) || !bytes.Equal(buf[skip:], lastChunk) {
		return false
	}
	br.Discard(len(buf))
	b.finish(true)
	b.err = io.EOF
	return true
}

// nextChunk consumes the previous chunk's CRLF and the next size line; at
// the last chunk it reads the trailers and returns io.EOF.
func (b *body) nextChunk() error {
	br := b.c.br
	if b.crlf {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return noEOF(err)
		}
		if len(line) > 2 || (len(line) == 2 && line[0] != '\r') {
			return &protoError{"missing CRLF after chunk"}
		}
		b.crlf = false
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return &protoError{"chunk size line too long"}
		}
		return noEOF(err)
	}
	n, ok := parseChunkSize(line)
	if !ok {
		return &protoError{"bad chunk size"}
	}
	if n > 0 {
		b.remain = n
		return nil
	}
	if err := b.readTrailers(); err != nil {
		return err
	}
	return io.EOF
}

// readTrailers reads the trailer section into resp.Trailer.
func (b *body) readTrailers() error {
	br := b.c.br
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return noEOF(err)
		}
		total += len(line)
		if total > maxHeadBytes {
			return &protoError{"trailers too large"}
		}
		l := strings.TrimRight(string(line), "\r\n")
		if l == "" {
			return nil
		}
		colon := strings.IndexByte(l, ':')
		if colon <= 0 || !validHeaderKey(l[:colon]) {
			return &protoError{"bad trailer line"}
		}
		v := trimOWS(l[colon+1:])
		if !validHeaderValue(v) {
			return &protoError{"bad trailer value"}
		}
		k := canonicalKey(l[:colon])
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Host":
			continue
		}
		if b.resp.Trailer == nil {
			b.resp.Trailer = make(http.Header)
		}
		b.resp.Trailer[k] = append(b.resp.Trailer[k], v)
	}
}

// parseChunkSize parses "hex[;ext]CRLF".
func parseChunkSize(line []byte) (int64, bool) {
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// finish ends the exchange once: the conn is pooled when reuse is allowed
// and the cancellation hook had not fired, otherwise closed.
func (b *body) finish(clean bool) {
	if !b.state.CompareAndSwap(stActive, stDone) {
		return
	}
	c := b.c
	reuse := clean && b.keep
	if b.stop != nil && !b.stop() {
		reuse = false // the context fired: the conn's deadline is poisoned
	}
	if !reuse {
		c.close()
		return
	}
	if c.deadline {
		c.nc.SetDeadline(noDeadline)
		c.deadline = false
	}
	c.ep.pool.put(c)
}

func (b *body) fail(err error) {
	b.finish(false)
	b.err = err
}

// Close ends the body. After a full read it is a no-op; otherwise the
// connection is closed (unless the rest of a fixed-length body is already
// buffered, in which case it is skipped and the connection reused).
func (b *body) Close() error {
	if b.state.Load() != stActive {
		return nil
	}
	if b.busy.Load() {
		// A Read is blocked in another goroutine: wake it by closing the
		// socket, and leave the buffers to the garbage collector.
		if b.state.CompareAndSwap(stActive, stDone) {
			if b.stop != nil {
				b.stop()
			}
			b.c.nc.Close() // the blocked Read fails and records the error
		}
		return nil
	}
	if b.mode == modeFixed && b.remain <= int64(b.c.br.Buffered()) {
		b.c.br.Discard(int(b.remain))
		b.remain = 0
		b.finish(true)
	} else {
		b.finish(false)
	}
	b.err = errBodyClosed
	return nil
}

// upgradeBody is the response body of a 101 Switching Protocols exchange:
// the raw upstream connection, starting with bytes already buffered. It
// never returns to a pool.
type upgradeBody struct {
	c    *conn
	stop func() bool
	once sync.Once
}

func (u *upgradeBody) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgradeBody) Write(p []byte) (int, error) { return u.c.nc.Write(p) }

// Close closes the upstream connection.
func (u *upgradeBody) Close() error {
	var err error
	u.once.Do(func() {
		if u.stop != nil {
			u.stop()
		}
		err = u.c.nc.Close()
	})
	return err
}

// CloseWrite half-closes the upstream connection when it supports it, so
// a tunnel can forward a client's end of stream.
func (u *upgradeBody) CloseWrite() error {
	if cw, ok := u.c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// NetConn returns the underlying connection (for deadlines on tunnels).
func (u *upgradeBody) NetConn() net.Conn { return u.c.nc }

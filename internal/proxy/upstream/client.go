package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// roundTripH1 runs one HTTP/1.1 exchange on a pooled or new connection to
// ep. A reused connection that fails before any response byte arrives (the
// upstream closed it while idle) is retried once on a fresh connection when
// the request can be replayed.
func (u *Upstream) roundTripH1(req *http.Request, ep *Endpoint) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, classify(ctx, ep.Address, err, false)
	}
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	c := ep.pool.get()
	reused := c != nil
	for {
		if c == nil && u.brk.countsConns() {
			// At max connections this waits (pending) or rejects.
			pc, err := u.connSlot(ctx, ep)
			if err != nil {
				return nil, err
			}
			if pc != nil {
				c, reused = pc, true
			} else {
				nc, err := u.dial(ctx, ep, true)
				if err != nil {
					return nil, classify(ctx, ep.Address, err, false)
				}
				c = newConn(nc, ep)
			}
		}
		if c == nil {
			nc, err := u.dial(ctx, ep, false)
			if err != nil {
				return nil, classify(ctx, ep.Address, err, false)
			}
			c = newConn(nc, ep)
		}
		resp, fresh, err := c.roundTrip(req, body)
		if err == nil {
			return resp, nil
		}
		if !reused || !fresh || ctx.Err() != nil {
			return nil, err
		}
		// Stale keep-alive conn: replay once on a new connection.
		if body != nil {
			if req.GetBody == nil {
				return nil, err
			}
			nb, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			body = nb
		}
		c, reused = nil, false
	}
}

// roundTrip writes req and reads the response head. On error the conn is
// closed; fresh reports that nothing of a response had arrived (so a
// replay on another connection is safe to consider).
func (c *conn) roundTrip(req *http.Request, body io.Reader) (resp *http.Response, fresh bool, err error) {
	ctx := req.Context()
	if d, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(d)
		c.deadline = true
	} else if c.deadline {
		c.nc.SetDeadline(noDeadline)
		c.deadline = false
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.abort)
	}
	werr := c.writeRequest(req, body)
	var rbe *requestBodyError
	if werr != nil && (body == nil || errors.As(werr, &rbe)) {
		c.fail(stop)
		return nil, rbe == nil, classify(ctx, c.ep.Address, werr, false)
	}
	hdrTimer := werr == nil && c.headerDeadline(ctx)
	// Even when writing the body failed, the upstream may have answered
	// early (e.g. 413) before closing: prefer its response.
	resp, fresh, err = c.readResponse(req, stop)
	if err != nil {
		c.fail(stop)
		if werr != nil {
			err = werr
		}
		if hdrTimer && ctx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, false, headerTimeoutErr(c.ep.Address, c.ep.up.to.header)
		}
		return nil, fresh && werr == nil, classify(ctx, c.ep.Address, err, isProtoErr(err))
	}
	if hdrTimer {
		c.clearHeaderDeadline(ctx)
	}
	return resp, false, nil
}

// fail releases the cancellation hook and closes the conn.
func (c *conn) fail(stop func() bool) {
	if stop != nil {
		stop()
	}
	c.close()
}

// writeRequest sends the request line, headers and body; the head and a
// body that fits the write buffer leave in one write.
func (c *conn) writeRequest(req *http.Request, body io.Reader) error {
	w := c.bw
	w.WriteString(req.Method)
	w.WriteByte(' ')
	writeTarget(w, req)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if host == "" {
		host = c.ep.Address
	}
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		if skipHeader(k) || !validHeaderKey(k) {
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			writeHeaderValue(w, v)
			w.WriteString("\r\n")
		}
	}
	n := req.ContentLength
	chunked := false
	switch {
	case body == nil:
		if n > 0 || req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH" {
			w.WriteString("Content-Length: 0\r\n")
		}
	case n > 0:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), n, 10))
		w.WriteString("\r\n")
	default:
		chunked = true
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.WriteString("\r\n")
	var err error
	switch {
	case body == nil:
	case chunked:
		err = c.writeChunked(body, req.Trailer)
	default:
		err = c.writeFixed(body, n)
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

// writeFixed copies exactly n body bytes: into the write buffer first (so
// small bodies share the head's write), then through a pooled buffer.
func (c *conn) writeFixed(body io.Reader, n int64) error {
	w := c.bw
	for n > 0 && w.Available() > 0 {
		buf := w.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), n)]
		m, err := body.Read(buf)
		w.Write(buf[:m])
		n -= int64(m)
		if err != nil {
			if n == 0 {
				break
			}
			return bodyErr(err)
		}
	}
	if n == 0 {
		return nil
	}
	if err := w.Flush(); err != nil {
		return err
	}
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	for n > 0 {
		m, rerr := body.Read(buf[:min(int64(len(buf)), n)])
		if m > 0 {
			if _, err := c.nc.Write(buf[:m]); err != nil {
				return err
			}
			n -= int64(m)
		}
		if rerr != nil && n > 0 {
			return bodyErr(rerr)
		}
	}
	return nil
}

// writeChunked streams a body of unknown length, flushing every chunk so
// streamed uploads are not held back.
func (c *conn) writeChunked(body io.Reader, trailer http.Header) error {
	w := c.bw
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := (*bp)[:writeBufSize-32]
	for {
		m, rerr := body.Read(buf)
		if m > 0 {
			w.Write(strconv.AppendUint(w.AvailableBuffer(), uint64(m), 16))
			w.WriteString("\r\n")
			w.Write(buf[:m])
			w.WriteString("\r\n")
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return bodyErr(rerr)
		}
	}
	w.WriteString("0\r\n")
	for k, vs := range trailer {
		if !validHeaderKey(k) {
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			writeHeaderValue(w, v)
			w.WriteString("\r\n")
		}
	}
	w.WriteString("\r\n")
	return nil
}

// requestBodyError marks a failure reading the client's request body.
type requestBodyError struct{ err error }

func (e *requestBodyError) Error() string { return "reading request body: " + e.err.Error() }
func (e *requestBodyError) Unwrap() error { return e.err }

func bodyErr(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &requestBodyError{err}
}

// writeTarget writes the origin-form request target.
func writeTarget(w interface{ WriteString(string) (int, error) }, req *http.Request) {
	u := req.URL
	switch {
	case u.Opaque != "":
		w.WriteString(u.Opaque)
	case u.RawPath == "" && u.Path != "" && !needsEscape(u.Path):
		w.WriteString(u.Path)
	default:
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		w.WriteString(p)
	}
	if u.RawQuery != "" {
		w.WriteString("?")
		w.WriteString(u.RawQuery)
	}
}

// needsEscape reports whether path has bytes that must be percent-encoded.
func needsEscape(p string) bool {
	for i := 0; i < len(p); i++ {
		b := p[i]
		if b <= ' ' || b >= 0x7f || b == '%' || b == '?' || b == '#' {
			return true
		}
	}
	return false
}

func skipHeader(k string) bool {
	switch len(k) {
	case 4:
		return k == "Host"
	case 14:
		return k == "Content-Length"
	case 17:
		return k == "Transfer-Encoding"
	}
	return false
}

func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return false
		}
	}
	return true
}

// writeHeaderValue writes v with CR, LF and NUL replaced by spaces, so a
// value set by a filter can never inject headers.
func writeHeaderValue(w interface {
	WriteString(string) (int, error)
	WriteByte(byte) error
}, v string) {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b == '\r' || b == '\n' || b == 0 {
			for j := 0; j < len(v); j++ {
				if b := v[j]; b == '\r' || b == '\n' || b == 0 {
					w.WriteByte(' ')
				} else {
					w.WriteByte(b)
				}
			}
			return
		}
	}
	w.WriteString(v)
}

// classify wraps err into an *Error of the right kind.
func classify(ctx context.Context, addr string, err error, proto bool) error {
	var ue *Error
	if errors.As(err, &ue) {
		return ue
	}
	kind := Reset
	var de *dialError
	var ne net.Error
	cerr := ctx.Err()
	if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The conn deadline mirrors the context's and may fire first.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			cerr = context.DeadlineExceeded
		}
	}
	switch {
	case cerr == context.DeadlineExceeded:
		kind, err = Timeout, fmt.Errorf("%w (%v)", cerr, err)
	case cerr == context.Canceled:
		kind, err = Reset, fmt.Errorf("%w (%v)", cerr, err)
	case proto:
		kind = Protocol
	case errors.As(err, &de):
		kind = ConnectFailed
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		kind = Timeout
	}
	return &Error{Kind: kind, Endpoint: addr, Err: err}
}

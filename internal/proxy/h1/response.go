package h1

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	outSize = 64 << 10
	// gap is the room kept in front of body bytes for what is decided only
	// when they are sent: the framing fields and end of head, or a chunk-size
	// line.
	gap = 96
)

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, outSize); return &b }}

// response is the http.ResponseWriter of one request. The head is serialized
// at WriteHeader, before the body bytes in the same buffer; the framing
// (Content-Length or chunked) is slotted in between when the buffer is first
// sent, so a response that fits the buffer goes out in one write with its
// exact length.
type response struct {
	c    *conn
	req  *http.Request
	h    http.Header
	bufp *[]byte
	buf  []byte

	mu          sync.Mutex // orders 100 Continue (body goroutine) with the final head
	wroteHeader bool
	sentCont    bool

	status     int
	headLen    int // serialized head at buf[:headLen] until committed
	bodyStart  int
	committed  bool // head sent
	chunked    bool
	noBody     bool
	isHead     bool
	declared   int64 // the handler's Content-Length, or -1
	written    int64
	trailers   []string // declared with the Trailer field
	closeAfter bool
	err        error
}

func (w *response) reset(c *conn, req *http.Request) {
	*w = response{c: c, req: req, h: make(http.Header, 8), declared: -1, isHead: req.Method == http.MethodHead}
	w.closeAfter = req.Close
}

// Header returns the header map sent with the response.
func (w *response) Header() http.Header { return w.h }

// WriteHeader sends an informational (1xx) head at once, or sets the final
// status; a second final status is ignored, as in net/http.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.c.hijack {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wroteHeader {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		b := w.appendHead(make([]byte, 0, 256), code, false)
		b = append(b, "\r\n"...)
		if _, err := w.c.nc.Write(b); err != nil {
			w.fail(err)
		}
		if code == http.StatusContinue {
			w.sentCont = true
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.h
	switch {
	case code < 200 || code == http.StatusNoContent:
		w.noBody = true
		delete(h, "Content-Length")
	case code == http.StatusNotModified:
		w.noBody = true
	}
	if v := h["Content-Length"]; len(v) > 0 {
		if n, err := parseLength(v[0]); err == nil && len(v) == 1 {
			w.declared = n
		} else {
			delete(h, "Content-Length")
		}
	}
	delete(h, "Transfer-Encoding")
	for _, v := range h["Trailer"] {
		for v != "" {
			var k string
			k, v, _ = strings.Cut(v, ",")
			if k = trimOWS(k); validToken(k) {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
			}
		}
	}
	if hasToken(h["Connection"], "close") || w.c.srv.shutdown.Load() {
		w.closeAfter = true
	}
	w.getBuf()
	w.buf = w.appendHead(w.buf[:0], code, true)
	w.headLen = len(w.buf)
	w.bodyStart = w.headLen + gap
	w.buf = w.buf[:w.bodyStart]
}

// appendHead serializes the status line and header fields (not the framing
// ones nor the final empty line).
func (w *response) appendHead(b []byte, code int, final bool) []byte {
	if w.req.ProtoMinor == 0 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\n"...)
	for k, vv := range w.h {
		if strings.HasPrefix(k, http.TrailerPrefix) || !validToken(k) {
			continue
		}
		if final && k == "Connection" {
			continue // appended with the framing
		}
		for _, v := range vv {
			b = appendField(b, k, v)
		}
	}
	if _, ok := w.h["Date"]; !ok && final {
		b = append(b, "Date: "...)
		b = appendDate(b)
		b = append(b, "\r\n"...)
	}
	return b
}

// appendField appends "k: v\r\n", turning CR and LF in v into spaces so a
// value cannot inject fields.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	start := len(b)
	b = append(b, v...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return append(b, "\r\n"...)
}

func (w *response) getBuf() {
	if w.bufp == nil {
		w.bufp = outPool.Get().(*[]byte)
		w.buf = (*w.bufp)[:0]
	}
}

func (w *response) putBuf() {
	if w.bufp != nil {
		if cap(w.buf) == outSize {
			*w.bufp = w.buf[:0]
			outPool.Put(w.bufp)
		}
		w.bufp, w.buf = nil, nil
	}
}

// writeContinue sends "100 Continue" unless the final head was already chosen.
func (w *response) writeContinue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wroteHeader || w.sentCont || w.err != nil || w.c.hijack {
		return
	}
	w.sentCont = true
	if _, err := w.c.nc.Write(continueLine); err != nil {
		w.fail(err)
	}
}

var continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")

func (w *response) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	w.closeAfter = true
}

// Write adds body bytes to the output buffer, sending it when full.
func (w *response) Write(p []byte) (int, error) { return write(w, p) }

// WriteString is Write without converting s to a new []byte.
func (w *response) WriteString(s string) (int, error) { return write(w, s) }

func write[T string | []byte](w *response, p T) (int, error) {
	if w.c.hijack {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		if w.isHead {
			w.written += int64(len(p))
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		w.closeAfter = true
		return 0, http.ErrContentLength
	}
	if w.isHead {
		w.written += int64(len(p))
		return len(p), nil
	}
	n := len(p)
	w.written += int64(n)
	for len(p) > 0 {
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(false); err != nil {
				return n - len(p), err
			}
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
	}
	return n, nil
}

// Flush sends what is buffered (committing the head with chunked framing when
// the length is not known yet).
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting a write error (used by http.ResponseController).
func (w *response) FlushError() error {
	if w.c.hijack {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	return w.flush(false)
}

// hasTrailers reports whether the response must end with a trailer section.
func (w *response) hasTrailers() bool {
	if len(w.trailers) > 0 {
		return true
	}
	for k := range w.h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// flush sends the buffer. On the first call it decides the framing; final is
// set when the handler has returned.
func (w *response) flush(final bool) error {
	if w.err != nil {
		return w.err
	}
	body := len(w.buf) - w.bodyStart
	start := w.bodyStart
	if !w.committed {
		w.committed = true
		var fb [gap]byte
		f := w.appendFraming(fb[:0], final, body)
		fs := w.bodyStart - len(f)
		copy(w.buf[fs:], f)
		start = fs - w.headLen
		copy(w.buf[start:fs], w.buf[:w.headLen])
	} else if w.chunked && body > 0 {
		var lb [20]byte
		l := append(strconv.AppendInt(lb[:0], int64(body), 16), '\r', '\n')
		start -= len(l)
		copy(w.buf[start:], l)
	}
	if w.chunked && body > 0 {
		w.buf = append(w.buf, "\r\n"...)
	}
	if final && w.chunked {
		w.buf = append(w.buf, "0\r\n"...)
		w.buf = w.appendTrailers(w.buf)
		w.buf = append(w.buf, "\r\n"...)
	}
	var err error
	if len(w.buf) > start {
		_, err = w.c.nc.Write(w.buf[start:])
	}
	w.buf = w.buf[:gap]
	w.bodyStart = gap
	if err != nil {
		w.fail(err)
	}
	return err
}

// appendFraming appends the Connection field, the body framing, the end of
// the head and, for a chunked body, the first chunk-size line.
func (w *response) appendFraming(b []byte, final bool, body int) []byte {
	http10 := w.req.ProtoMinor == 0
	switch {
	case w.declared >= 0:
	case w.noBody:
		if w.isHead && final && w.written > 0 {
			b = append(b, "Content-Length: "...)
			b = appendInt(b, w.written)
			b = append(b, "\r\n"...)
		}
	case final && !w.hasTrailers():
		b = append(b, "Content-Length: "...)
		b = appendInt(b, w.written)
		b = append(b, "\r\n"...)
	case !http10:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		w.closeAfter = true // HTTP/1.0: the body ends when the connection does
	}
	switch {
	case w.closeAfter:
		b = append(b, "Connection: close\r\n"...)
	case http10:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	if w.chunked && body > 0 {
		b = strconv.AppendInt(b, int64(body), 16)
		b = append(b, "\r\n"...)
	}
	return b
}

// appendTrailers appends the declared trailers and those set with
// http.TrailerPrefix.
func (w *response) appendTrailers(b []byte) []byte {
	for _, k := range w.trailers {
		for _, v := range w.h[k] {
			b = appendField(b, k, v)
		}
	}
	for k, vv := range w.h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && validToken(name) {
			for _, v := range vv {
				b = appendField(b, name, v)
			}
		}
	}
	return b
}

// finish completes the response after the handler returned.
func (w *response) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.declared >= 0 && w.written < w.declared && !w.noBody {
		w.closeAfter = true // truncated: the client must not wait for the rest
	}
	err := w.flush(true)
	w.putBuf()
	return err
}

// Hijack hands the connection to the handler, with a reader that still holds
// the bytes the server buffered (http.Hijacker).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijack {
		return nil, nil, http.ErrHijacked
	}
	c.bg.disarm(c)
	if w.committed {
		if err := w.flush(false); err != nil {
			return nil, nil, err
		}
	}
	w.putBuf()
	c.hijack = true
	_ = c.nc.SetReadDeadline(time.Time{})
	c.srv.setState(c.nc, http.StateHijacked)
	br := c.br
	c.br = nil
	return c.nc, bufio.NewReadWriter(br, bufio.NewWriter(c.nc)), nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error { return w.c.nc.SetReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// EnableFullDuplex is accepted: the body can always be read while writing.
func (w *response) EnableFullDuplex() error { return nil }

// dateCache formats the Date field once per second.
var dateCache struct {
	mu   sync.Mutex
	sec  int64
	text []byte
}

func appendDate(b []byte) []byte {
	now := time.Now()
	sec := now.Unix()
	dateCache.mu.Lock()
	if sec != dateCache.sec || dateCache.text == nil {
		dateCache.sec = sec
		dateCache.text = now.UTC().AppendFormat(dateCache.text[:0], http.TimeFormat)
	}
	b = append(b, dateCache.text...)
	dateCache.mu.Unlock()
	return b
}

package h1

import (
	"bufio"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// protoError is a request the server refuses; status is what it answers.
type protoError struct {
	status status
	why    string
}

func (e *protoError) Error() string { return "h1: " + e.status.text() + ": " + e.why }

func bad(why string) error { return &protoError{http.StatusBadRequest, why} }

type status int

func (s status) text() string {
	return itoa(int(s)) + " " + http.StatusText(int(s))
}

var errTooLarge = &protoError{http.StatusRequestHeaderFieldsTooLarge, "request head too large"}

// readRequest reads and parses the next request head into c.tmpl. It returns
// nil, nil when the connection should end quietly: the peer closed or was
// idle too long, the server is shutting down, or the connection went to
// Fallback.
func (c *conn) readRequest() (*http.Request, error) {
	s, br := c.srv, c.br
	if br.Buffered() == 0 {
		c.idle.Store(true)
		if s.shutdown.Load() {
			return nil, nil
		}
		if s.IdleTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(s.IdleTimeout))
		}
		_, err := br.Peek(1)
		c.idle.Store(false)
		if err != nil {
			return nil, nil
		}
		if c.served > 0 {
			s.setState(c.nc, http.StateActive)
		}
	}
	if c.served == 0 {
		s.setState(c.nc, http.StateActive)
		if c.isH2Preface() {
			c.fallback()
			return nil, nil
		}
	}
	c.served++
	head, err := c.readHead()
	if err != nil {
		return nil, err
	}
	req := &c.tmpl
	if err := parseHead(head, req); err != nil {
		return nil, err
	}
	req.RemoteAddr = c.remote
	return req, c.setBody(req)
}

// isH2Preface reports whether the connection opens with the HTTP/2 preface,
// reading no further than needed to tell.
func (c *conn) isH2Preface() bool {
	for {
		n := c.br.Buffered()
		b, _ := c.br.Peek(n)
		if n >= len(h2Preface) {
			return string(b[:len(h2Preface)]) == h2Preface
		}
		if !strings.HasPrefix(h2Preface, string(b)) {
			return false
		}
		if _, err := c.br.Peek(n + 1); err != nil {
			return false
		}
	}
}

// readHead returns the request head (request line through the empty line) as
// one string, so every field parsed from it shares a single allocation.
func (c *conn) readHead() (string, error) {
	s, br := c.srv, c.br
	max := s.MaxHeaderBytes
	if max <= 0 {
		max = 1 << 20
	}
	// Skip empty lines before the request line (RFC 9112 §2.2).
	for i := 0; i < 4; i++ {
		b, err := br.Peek(1)
		if err != nil {
			return "", err
		}
		if b[0] != '\r' && b[0] != '\n' {
			break
		}
		_, _ = br.Discard(1)
	}
	deadlineSet := false
	for {
		n := br.Buffered()
		b, _ := br.Peek(n)
		if end := headEnd(b); end >= 0 {
			if end > max {
				return "", errTooLarge
			}
			head := string(b[:end])
			_, _ = br.Discard(end)
			if deadlineSet || s.IdleTimeout > 0 {
				_ = c.nc.SetReadDeadline(time.Time{})
			}
			return head, nil
		}
		if n >= br.Size() {
			return c.readLongHead(max)
		}
		if !deadlineSet && s.ReadHeaderTimeout > 0 {
			deadlineSet = true
			_ = c.nc.SetReadDeadline(time.Now().Add(s.ReadHeaderTimeout))
		}
		if _, err := br.Peek(n + 1); err != nil {
			return "", err
		}
	}
}

// readLongHead reads a head that does not fit the read buffer, line by line.
func (c *conn) readLongHead(max int) (string, error) {
	var acc []byte
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
		atStart := len(acc) == 0 || acc[len(acc)-1] == '\n'
		acc = append(acc, line...)
		if len(acc) > max {
			return "", errTooLarge
		}
		if err == nil && atStart && len(acc) > len(line) && (len(line) == 1 || string(line) == "\r\n") {
			_ = c.nc.SetReadDeadline(time.Time{})
			return string(acc), nil
		}
	}
}

// headEnd returns the length of the head in b (through its empty line), or -1
// when b does not hold a whole head. Lines end in LF, optionally after CR.
func headEnd(b []byte) int {
	i := 0
	for {
		j := indexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

// parseHead parses a head as readHead returns it into req (which must be zero).
func parseHead(head string, req *http.Request) error {
	line, rest := nextLine(head)
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || method == "" || target == "" {
		return bad("malformed request line")
	}
	if !validToken(method) {
		return bad("invalid method")
	}
	req.Method = internMethod(method)
	switch proto {
	case "HTTP/1.1":
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		if len(proto) == 8 && strings.HasPrefix(proto, "HTTP/") && proto[6] == '.' &&
			isDigit(proto[5]) && isDigit(proto[7]) {
			return &protoError{http.StatusHTTPVersionNotSupported, "unsupported version"}
		}
		return bad("malformed version")
	}
	req.RequestURI = target
	u, err := parseTarget(req.Method, target)
	if err != nil {
		return err
	}
	req.URL = u

	h := make(http.Header, strings.Count(rest, "\n"))
	vals := make([]string, 0, strings.Count(rest, "\n"))
	for {
		line, rest = nextLine(rest)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return bad("obsolete line folding")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validToken(name) {
			return bad("malformed header field")
		}
		value = trimOWS(value)
		if !validValue(value) {
			return bad("invalid header value")
		}
		key := canonicalKey(name)
		if old, ok := h[key]; ok {
			h[key] = append(old, value)
			continue
		}
		vals = append(vals, value)
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	req.Header = h
	return finishHead(req)
}

// finishHead applies the header fields that shape the request itself.
func finishHead(req *http.Request) error {
	h := req.Header
	hosts := h["Host"]
	switch {
	case len(hosts) > 1:
		return bad("multiple Host fields")
	case len(hosts) == 1:
		if !validHost(hosts[0]) {
			return bad("invalid Host")
		}
	case req.ProtoMinor == 1:
		return bad("missing Host")
	}
	req.Host = req.URL.Host
	if req.Host == "" && len(hosts) == 1 {
		req.Host = hosts[0]
	}
	delete(h, "Host") // net/http reports it in req.Host only
	conn := h["Connection"]
	if req.ProtoMinor == 0 {
		req.Close = !hasToken(conn, "keep-alive")
	} else {
		req.Close = hasToken(conn, "close")
	}
	return nil
}

// nextLine splits off the first line of s, without its CR LF or LF.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseTarget parses a request target in any of the forms of RFC 9112 §3.2.
// Plain origin-form paths (no escapes) skip url.ParseRequestURI.
func parseTarget(method, target string) (*url.URL, error) {
	if method == http.MethodConnect && target[0] != '/' {
		// authority-form: host:port.
		u, err := url.ParseRequestURI("http://" + target)
		if err != nil || u.Path != "" || u.Host == "" {
			return nil, bad("invalid CONNECT target")
		}
		u.Scheme = ""
		return u, nil
	}
	if target[0] == '/' && simplePath(target) {
		u := &url.URL{}
		if i := strings.IndexByte(target, '?'); i >= 0 {
			u.Path, u.RawQuery = target[:i], target[i+1:]
		} else {
			u.Path = target
		}
		return u, nil
	}
	if target[0] != '/' && target != "*" && !strings.Contains(target, "://") {
		return nil, bad("invalid request target")
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, bad("invalid request target")
	}
	return u, nil
}

// simplePath reports whether an origin-form target has only printable ASCII
// and no percent-escape or fragment, so its path needs no decoding.
func simplePath(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == '#' {
			return false
		}
	}
	return true
}

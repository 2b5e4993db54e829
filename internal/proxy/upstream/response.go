package upstream

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	maxHeadBytes = 1 << 20 // response head limit (status line + headers)
	max1xx       = 16      // informational responses tolerated before the final one
)

var (
	noDeadline time.Time
	chunkedTE  = []string{"chunked"}
)

// protoError is a malformed response from the upstream.
type protoError struct{ msg string }

func (e *protoError) Error() string { return "malformed response: " + e.msg }

func isProtoErr(err error) bool {
	var pe *protoError
	return errors.As(err, &pe)
}

// altReadResponse, when set (benchmarks only), replaces readResponse.
var altReadResponse func(c *conn, req *http.Request, stop func() bool) (*http.Response, bool, error)

// readHead reads one response head into c.head, recording [start,end) of
// each line (without CRLF) in c.lines. fresh reports that not a single byte
// arrived.
func (c *conn) readHead() (fresh bool, err error) {
	c.head, c.lines = c.head[:0], c.lines[:0]
	start := 0
	for {
		line, err := c.br.ReadSlice('\n')
		c.head = append(c.head, line...)
		if len(c.head) > maxHeadBytes {
			return false, &protoError{"response head too large"}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(c.head) == 0 {
				return true, err
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return false, err
		}
		end := len(c.head) - 1
		if end > start && c.head[end-1] == '\r' {
			end--
		}
		if end == start {
			if len(c.lines) == 0 { // stray CRLF before the status line
				start = len(c.head)
				continue
			}
			return false, nil
		}
		c.lines = append(c.lines, start, end)
		start = len(c.head)
	}
}

// parseStatus parses "HTTP/1.x NNN reason".
func parseStatus(l string) (code int, minor int, ok bool) {
	if len(l) < 12 || l[:7] != "HTTP/1." || l[8] != ' ' || (len(l) > 12 && l[12] != ' ') {
		return 0, 0, false
	}
	switch l[7] {
	case '0':
	case '1':
		minor = 1
	default:
		return 0, 0, false
	}
	for i := 9; i < 12; i++ {
		if l[i] < '0' || l[i] > '9' {
			return 0, 0, false
		}
		code = code*10 + int(l[i]-'0')
	}
	return code, minor, code >= 100
}

// respBody allocates a response and its body in one go.
type respBody struct {
	resp http.Response
	body body
	vals [12]string // header values backing for typical responses
}

// readResponse reads the final response head (skipping 1xx informational
// ones) and sets up its body.
func (c *conn) readResponse(req *http.Request, stop func() bool) (*http.Response, bool, error) {
	if altReadResponse != nil {
		return altReadResponse(c, req, stop)
	}
	var code, minor int
	for n := 0; ; n++ {
		fresh, err := c.readHead()
		if err != nil {
			return nil, fresh && n == 0, err
		}
		var ok bool
		code, minor, ok = parseStatus(string(c.head[c.lines[0]:c.lines[1]]))
		if !ok {
			return nil, false, &protoError{"bad status line"}
		}
		if code >= 200 || code == 101 {
			break
		}
		if n >= max1xx {
			return nil, false, &protoError{"too many 1xx responses"}
		}
	}
	s := string(c.head) // one allocation holds every header value
	rb := &respBody{}
	resp := &rb.resp
	resp.Status = s[c.lines[0]+9 : c.lines[1]]
	resp.StatusCode = code
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, minor
	if minor == 0 {
		resp.Proto = "HTTP/1.0"
	}
	resp.Request = req
	nh := len(c.lines)/2 - 1
	h := make(http.Header, nh)
	vals := rb.vals[:0]
	if nh <= len(rb.vals) {
		vals = rb.vals[:nh]
	} else {
		vals = make([]string, nh)
	}
	resp.Header = h
	var (
		clen       int64 = -1
		chunked    bool
		close      = minor == 0
		upgrade    bool
		hasTrailer bool
	)
	for i := 2; i < len(c.lines); i += 2 {
		line := s[c.lines[i]:c.lines[i+1]]
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, false, &protoError{"bad header line"}
		}
		rawKey := line[:colon]
		if !validHeaderKey(rawKey) {
			return nil, false, &protoError{"bad header name"}
		}
		v := trimOWS(line[colon+1:])
		if !validHeaderValue(v) {
			return nil, false, &protoError{"bad header value"}
		}
		k := canonicalKey(rawKey)
		switch k {
		case "Content-Length":
			n, ok := parseContentLength(v)
			if !ok || (clen >= 0 && n != clen) {
				return nil, false, &protoError{"bad Content-Length"}
			}
			clen = n
		case "Transfer-Encoding":
			if chunked || !strings.EqualFold(v, "chunked") {
				return nil, false, &protoError{"unsupported Transfer-Encoding"}
			}
			chunked = true
			continue // reported in resp.TransferEncoding, as net/http does
		case "Connection":
			if hasToken(v, "close") {
				close = true
			} else if minor == 0 && hasToken(v, "keep-alive") {
				close = false
			}
			upgrade = upgrade || hasToken(v, "upgrade")
		case "Trailer":
			hasTrailer = true
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		j := i/2 - 1
		vals[j] = v
		h[k] = vals[j : j+1 : j+1]
	}
	resp.Close = close
	b := &rb.body
	b.c, b.resp, b.stop = c, resp, stop
	resp.Body = b

	switch {
	case code == 101:
		if !upgrade || !hasToken(req.Header.Get("Connection"), "upgrade") {
			return nil, false, &protoError{"unexpected 101 Switching Protocols"}
		}
		if c.deadline {
			c.nc.SetDeadline(noDeadline)
		}
		resp.Body = &upgradeBody{c: c, stop: stop}
		resp.ContentLength = -1
		return resp, false, nil
	case req.Method == "HEAD" || code == 204 || code == 304:
		resp.ContentLength = clen
		if code == 204 || code == 304 {
			resp.ContentLength = 0
		}
		resp.Body = http.NoBody
		b.keep = !close
		b.finish(true)
	case chunked:
		if clen >= 0 {
			h.Del("Content-Length")
			resp.Close, close = true, true // both framings: do not trust the conn
		}
		resp.ContentLength = -1
		resp.TransferEncoding = chunkedTE
		if hasTrailer {
			declareTrailers(resp)
		}
		b.mode, b.keep = modeChunked, !close
		b.tryEOF()
	case clen == 0:
		resp.ContentLength = 0
		resp.Body = http.NoBody
		b.keep = !close
		b.finish(true)
	case clen > 0:
		resp.ContentLength = clen
		b.mode, b.remain, b.keep = modeFixed, clen, !close
	default:
		resp.ContentLength = -1
		resp.Close = true
		b.mode = modeEOF
	}
	return resp, false, nil
}

// declareTrailers moves the "Trailer" header into resp.Trailer keys.
func declareTrailers(resp *http.Response) {
	for _, v := range resp.Header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" && validHeaderKey(k) {
				if resp.Trailer == nil {
					resp.Trailer = make(http.Header)
				}
				resp.Trailer[http.CanonicalHeaderKey(k)] = nil
			}
		}
	}
	delete(resp.Header, "Trailer")
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v contains token
// (ASCII case-insensitive).
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		if i := strings.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, ""
		}
		if strings.EqualFold(trimOWS(t), token) {
			return true
		}
	}
	return false
}

func isTokenChar(b byte) bool {
	return b < 0x80 && tokenTable[b]
}

var tokenTable = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// commonKeys interns canonical forms of frequent header names so that a
// server sending lower-case names does not cost an allocation per header.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Cache-Control",
		"Connection", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Type", "Date", "Etag", "Expires", "Keep-Alive", "Last-Modified",
		"Location", "Server", "Set-Cookie", "Strict-Transport-Security",
		"Trailer", "Transfer-Encoding", "Upgrade", "Vary", "Via", "Www-Authenticate",
		"X-Content-Type-Options", "X-Frame-Options", "X-Request-Id", "Grpc-Status",
		"Grpc-Message", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey returns the canonical form of a valid header name, without
// allocating when it already is canonical or is a common name.
func canonicalKey(k string) string {
	upper := true
	canon := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (upper && 'a' <= c && c <= 'z') || (!upper && 'A' <= c && c <= 'Z') {
			canon = false
			break
		}
		upper = c == '-'
	}
	if canon {
		return k
	}
	if len(k) > 64 {
		return http.CanonicalHeaderKey(k)
	}
	var buf [64]byte
	upper = true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	if s, ok := commonKeys[string(buf[:len(k)])]; ok {
		return s
	}
	return string(buf[:len(k)])
}

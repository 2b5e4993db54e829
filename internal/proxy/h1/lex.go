package h1

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
)

// tokenTable marks the bytes allowed in a token (RFC 9110 §5.6.2).
var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenTable[s[i]] {
			return false
		}
	}
	return true
}

// validValue reports whether a field value has no control bytes other than
// HTAB (so no CR, LF or NUL can be smuggled into it).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts the bytes a Host value may hold (reg-name, IP literal,
// port), as net/http does, and rejects everything else.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenTable[c] && c != '|' && c != '^' && c != '`' && c != '#' {
			continue
		}
		switch c {
		case ':', '[', ']', '(', ')', ',', ';', '=', '@':
			continue
		}
		return false
	}
	return true
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

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

func itoa(n int) string { return strconv.Itoa(n) }

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// hasToken reports whether a comma-separated field holds tok, ignoring case.
func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(trimOWS(t), tok) {
				return true
			}
		}
	}
	return false
}

var methods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

// internMethod returns the shared string for a standard method, so requests
// do not keep their head alive through it.
func internMethod(m string) string {
	for _, k := range methods {
		if k == m {
			return k
		}
	}
	return m
}

// commonKeys holds canonical field names seen in most requests and responses.
// Returning these strings keeps the map keys of a parsed header from pointing
// into (and pinning) the request head.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Authorization", "Cache-Control", "Connection", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Type", "Cookie", "Date", "Dnt", "Etag", "Expect", "Forwarded",
		"From", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range",
		"If-Unmodified-Since", "Keep-Alive", "Last-Modified", "Origin", "Pragma",
		"Proxy-Authorization", "Proxy-Connection", "Range", "Referer", "Sec-Fetch-Dest",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Websocket-Extensions",
		"Sec-Websocket-Key", "Sec-Websocket-Protocol", "Sec-Websocket-Version", "Te", "Trailer",
		"Traceparent", "Tracestate", "Transfer-Encoding", "Upgrade", "Upgrade-Insecure-Requests",
		"User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "X-Requested-With", "Grpc-Timeout", "Grpc-Encoding",
		"Grpc-Accept-Encoding",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey returns the canonical form of a valid field name, as
// textproto.CanonicalMIMEHeaderKey would, allocating only for uncommon names.
func canonicalKey(name string) string {
	if len(name) > 64 {
		return http.CanonicalHeaderKey(name)
	}
	var buf [64]byte
	b := buf[:len(name)]
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

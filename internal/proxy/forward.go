package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
)

// Header names, canonical, so the hot path indexes the map directly.
const (
	hdrConnection      = "Connection"
	hdrProxyConnection = "Proxy-Connection"
	hdrKeepAlive       = "Keep-Alive"
	hdrTE              = "Te"
	hdrTransferEnc     = "Transfer-Encoding"
	hdrUpgrade         = "Upgrade"
	hdrTrailer         = "Trailer"
	hdrXFF             = "X-Forwarded-For"
	hdrXFProto         = "X-Forwarded-Proto"
	hdrXFHost          = "X-Forwarded-Host"
	hdrForwarded       = "Forwarded"
	hdrRequestID       = "X-Request-Id"
	hdrContentType     = "Content-Type"
)

var (
	valHTTP     = []string{"http"}[:1:1]
	valHTTPS    = []string{"https"}[:1:1]
	valTrailers = []string{"trailers"}[:1:1]
	valUpgrade  = []string{"Upgrade"}[:1:1]
)

// removeHopHeaders deletes the hop-by-hop fields of RFC 9110 §7.6.1 from h:
// Connection and every field it names, Proxy-Connection, Keep-Alive,
// Transfer-Encoding, TE (except that "TE: trailers" is kept, as gRPC needs it
// end-to-end), and Upgrade unless keepUpgrade (an upgrade being proxied).
// It reports the Upgrade value and whether Connection listed "upgrade".
func removeHopHeaders(h http.Header, keepUpgrade bool) {
	for _, v := range h[hdrConnection] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = textproto.TrimString(tok)
			switch {
			case tok == "", strings.EqualFold(tok, "close"), strings.EqualFold(tok, "keep-alive"),
				strings.EqualFold(tok, "upgrade"):
				// Nothing more to delete (Keep-Alive and Upgrade are handled below).
			case strings.EqualFold(tok, "te"):
				delete(h, hdrTE)
			default:
				h.Del(tok)
			}
		}
	}
	delete(h, hdrConnection)
	delete(h, hdrProxyConnection)
	delete(h, hdrKeepAlive)
	delete(h, hdrTransferEnc)
	if te, ok := h[hdrTE]; ok {
		if headerHasToken(te, "trailers") {
			h[hdrTE] = valTrailers
		} else {
			delete(h, hdrTE)
		}
	}
	if !keepUpgrade {
		delete(h, hdrUpgrade)
	}
}

// upgradeType returns the protocol an HTTP/1.1 request asks to switch to, or "".
func upgradeType(r *http.Request) string {
	if r.ProtoMajor != 1 {
		return ""
	}
	up := r.Header[hdrUpgrade]
	if len(up) == 0 || !headerHasToken(r.Header[hdrConnection], "upgrade") {
		return ""
	}
	return up[0]
}

// headerHasToken reports whether a comma-separated header contains tok
// (case-insensitive), without allocating.
func headerHasToken(values []string, tok string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if t = textproto.TrimString(t); strings.EqualFold(t, tok) {
				return true
			}
			if i := strings.IndexByte(t, ';'); i >= 0 && strings.EqualFold(textproto.TrimString(t[:i]), tok) {
				return true
			}
		}
	}
	return false
}

// setForwarded records the client hop: X-Forwarded-For gets the client IP
// appended (earlier hops are kept, as nginx's $proxy_add_x_forwarded_for does);
// X-Forwarded-Proto and X-Forwarded-Host are set from what this gateway saw,
// replacing anything the client sent; and an RFC 7239 Forwarded element is appended.
func setForwarded(h http.Header, r *http.Request, clientIP string) {
	// One backing array for the three new single-value fields (capacity-capped
	// so appends elsewhere copy), instead of three slice allocations.
	vals := make([]string, 3)
	if prior := h[hdrXFF]; len(prior) > 0 {
		vals[0] = strings.Join(prior, ", ") + ", " + clientIP
	} else {
		vals[0] = clientIP
	}
	h[hdrXFF] = vals[0:1:1]
	proto := valHTTP
	if r.TLS != nil {
		proto = valHTTPS
	}
	h[hdrXFProto] = proto
	vals[1] = r.Host
	h[hdrXFHost] = vals[1:2:2]

	var b strings.Builder
	prior := h[hdrForwarded]
	n := len(clientIP) + len(r.Host) + 32
	for _, p := range prior {
		n += len(p) + 2
	}
	b.Grow(n)
	for _, p := range prior {
		b.WriteString(p)
		b.WriteString(", ")
	}
	b.WriteString("for=")
	if strings.IndexByte(clientIP, ':') >= 0 {
		b.WriteString(`"[`)
		b.WriteString(clientIP)
		b.WriteString(`]"`)
	} else {
		b.WriteString(clientIP)
	}
	if r.Host != "" {
		b.WriteString(";host=")
		writeForwardedValue(&b, r.Host)
	}
	b.WriteString(";proto=")
	b.WriteString(proto[0])
	vals[2] = b.String()
	h[hdrForwarded] = vals[2:3:3]
}

// writeForwardedValue writes v as an RFC 7239 value: a token if it is one, else
// a quoted string.
func writeForwardedValue(b *strings.Builder, v string) {
	token := true
	for i := 0; i < len(v); i++ {
		if !isTokenChar(v[i]) {
			token = false
			break
		}
	}
	if token {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// clientIP returns the IP part of a RemoteAddr without allocating.
func clientIP(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		remote = remote[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(remote, "["), "]")
}

// requestIDs generates request IDs: a random per-process prefix and a counter.
// Unique within a fleet with overwhelming probability, and a single atomic add per
// request instead of reading the system's random source.
type requestIDs struct {
	prefix [17]byte // 16 hex digits and '-'
	n      atomic.Uint64
}

func (g *requestIDs) init() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	hex.Encode(g.prefix[:16], b[:])
	g.prefix[16] = '-'
}

func (g *requestIDs) next() string {
	var buf [40]byte
	b := append(buf[:0], g.prefix[:]...)
	b = strconv.AppendUint(b, g.n.Add(1), 16)
	return string(b)
}

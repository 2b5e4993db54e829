package proxy

import (
	"net/http"
	"net/textproto"
	"path"
	"strconv"
	"strings"

	"portico.dev/portico/internal/ir"
)

// headerOps is a compiled ir.HeaderModifier. Names are canonical and Set values are
// prebuilt one-element slices (capacity 1, so an append elsewhere copies instead of
// writing into the shared array), so applying Set costs a map store.
type headerOps struct {
	set    []headerValue
	add    []headerValue
	remove []string
}

type headerValue struct {
	name   string
	values []string // for set: the whole value slice; for add: one value
}

func compileHeaderOps(m *ir.HeaderModifier) *headerOps {
	if m == nil || len(m.Set)+len(m.Add)+len(m.Remove) == 0 {
		return nil
	}
	ops := &headerOps{}
	for _, h := range m.Set {
		ops.set = append(ops.set, headerValue{textproto.CanonicalMIMEHeaderKey(h.Name), []string{h.Value}[:1:1]})
	}
	for _, h := range m.Add {
		ops.add = append(ops.add, headerValue{textproto.CanonicalMIMEHeaderKey(h.Name), []string{h.Value}[:1:1]})
	}
	for _, n := range m.Remove {
		ops.remove = append(ops.remove, textproto.CanonicalMIMEHeaderKey(n))
	}
	return ops
}

// apply edits h in Gateway API order: set, add, then remove.
func (o *headerOps) apply(h http.Header) {
	if o == nil {
		return
	}
	for _, s := range o.set {
		h[s.name] = s.values
	}
	for _, a := range o.add {
		if old := h[a.name]; len(old) > 0 {
			h[a.name] = append(old[:len(old):len(old)], a.values[0])
		} else {
			h[a.name] = a.values
		}
	}
	for _, r := range o.remove {
		delete(h, r)
	}
}

// pathRewrite replaces a request path: the whole of it (ReplaceFullPath) or the
// part a PathPrefix match matched (ReplacePrefixMatch).
type pathRewrite struct {
	full      string
	prefix    string // replacement for the matched prefix, without trailing slash
	hasPrefix bool
}

func newPathRewrite(full string, prefix *string) *pathRewrite {
	switch {
	case full != "":
		return &pathRewrite{full: full}
	case prefix != nil:
		return &pathRewrite{prefix: strings.TrimSuffix(*prefix, "/"), hasPrefix: true}
	}
	return nil
}

// apply returns the new path. matched is the prefix the route matched (without
// trailing slash, "" for "/"), valid when isPrefix; the rest of the path after it
// starts at a segment boundary, so replacing keeps segments whole:
// prefix /api, replacement /v2: /api/x → /v2/x, /api → /v2; replacement /: /api/x → /x.
// A prefix replacement on a route that is not a PathPrefix match replaces the whole
// path, which is the only meaning it can have there.
func (p *pathRewrite) apply(reqPath, matched string, isPrefix bool) string {
	if p == nil {
		return reqPath
	}
	if !p.hasPrefix {
		return p.full
	}
	rest := ""
	if isPrefix && len(matched) <= len(reqPath) {
		rest = reqPath[len(matched):]
	}
	out := p.prefix + rest
	if out == "" {
		return "/"
	}
	if out[0] != '/' {
		out = "/" + out
	}
	return out
}

// redirect is a compiled ir.Redirect.
type redirect struct {
	scheme   string
	hostname string
	port     int
	path     *pathRewrite
	status   int
}

// location builds the Location of a redirect, following Gateway API: unset parts
// come from the request; with no port configured, a configured scheme implies its
// well-known port and otherwise the listener's port is kept; the port is omitted
// when it is the default of the scheme. The query string is kept.
func (rd *redirect) location(r *http.Request, cr *compiledRoute, listenerPort int) string {
	scheme := rd.scheme
	if scheme == "" {
		scheme = requestScheme(r)
	}
	host := rd.hostname
	if host == "" {
		host = stripPort(r.Host)
	}
	port := rd.port
	if port == 0 {
		switch {
		case rd.scheme == "https":
			port = 443
		case rd.scheme == "http":
			port = 80
		default:
			port = listenerPort
		}
	}
	p := rd.path.apply(r.URL.Path, cr.prefix, cr.isPrefix)
	var b strings.Builder
	b.Grow(len(scheme) + len(host) + len(p) + len(r.URL.RawQuery) + 16)
	b.WriteString(scheme)
	b.WriteString("://")
	if strings.IndexByte(host, ':') >= 0 && !strings.HasPrefix(host, "[") {
		b.WriteString("[" + host + "]")
	} else {
		b.WriteString(host)
	}
	if !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(port))
	}
	b.WriteString(p)
	if r.URL.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(r.URL.RawQuery)
	}
	return b.String()
}

func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// stripPort removes a port from a Host value ("h:80", "[::1]:80" → "h", "::1").
func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		return host[:i]
	}
	return host
}

// needsClean reports whether p is not already in canonical form: empty, relative,
// or containing "//", "/./" or "/../" (or ending in "/." or "/..").
func needsClean(p string) bool {
	if p == "" || p[0] != '/' {
		return true
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' || i+1 >= len(p) {
			continue
		}
		switch p[i+1] {
		case '/':
			return true
		case '.':
			rest := p[i+2:]
			if rest == "" || rest[0] == '/' || rest == "." || strings.HasPrefix(rest, "./") {
				return true
			}
		}
	}
	return false
}

// cleanPath returns the canonical form of p (dot segments resolved, slashes
// collapsed), keeping a trailing slash, so routing and upstreams see the same path
// and "/public/../admin" cannot slip past a prefix match.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

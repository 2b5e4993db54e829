package upstream

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"portico.dev/portico/internal/ir"
)

// Session affinity by cookie (ir.Affinity). The cookie's value is an opaque
// endpoint id: 16 hex digits of a hash of the upstream name and the endpoint
// address, so the address is not revealed and the id is the same on every
// replica and after restarts. A request whose cookie names an endpoint of the
// upstream that is available (and not on the avoid list) goes there; any other
// request is balanced normally and its response sets the cookie
// (Path=/; HttpOnly; Max-Age when a TTL is set). An endpoint that left or
// became unavailable thus makes its clients re-pick and get a new cookie.

type affinity struct {
	name string
	byID map[string]*Endpoint
}

func (b *balancer) initAffinity(a *ir.Affinity) {
	if a == nil || a.Cookie == "" {
		return
	}
	b.aff = &affinity{name: a.Cookie, byID: make(map[string]*Endpoint, len(b.eps))}
	for _, e := range b.eps {
		b.aff.byID[e.id] = e
	}
}

// affinityCookie is the Set-Cookie value that pins a client to endpoint id.
func affinityCookie(a *ir.Affinity, id string) string {
	c := a.Cookie + "=" + id + "; Path=/; HttpOnly"
	if a.TTLMillis > 0 {
		c += "; Max-Age=" + strconv.FormatInt(max(a.TTLMillis/1000, 1), 10)
	}
	return c
}

// endpointID is the opaque affinity id of an endpoint.
func endpointID(upstream, addr string) string {
	h := hashString(upstream + "\x00" + addr)
	const hex = "0123456789abcdef"
	var buf [16]byte
	for i := range buf {
		buf[i] = hex[h>>(60-4*i)&0xf]
	}
	return string(buf[:])
}

// affinityPick returns the endpoint the request's cookie pins it to, or nil.
func (b *balancer) affinityPick(info *PickInfo) *Endpoint {
	if info.Request == nil {
		return nil
	}
	v := cookieValue(info.Request.Header, b.aff.name)
	if v == "" {
		return nil
	}
	e := b.aff.byID[v]
	if e == nil || !b.available(e) || slices.Contains(info.Avoid, e.Address) {
		return nil
	}
	return e
}

// setAffinityCookie adds Set-Cookie to resp when the request did not already
// carry the cookie naming ep.
func (u *Upstream) setAffinityCookie(req *http.Request, resp *http.Response, ep *Endpoint) {
	b := u.lb.Load()
	if b.aff == nil || resp == nil || ep.cookie == "" {
		return
	}
	if cookieValue(req.Header, b.aff.name) == ep.id {
		return
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	resp.Header.Add("Set-Cookie", ep.cookie)
}

// cookieValue returns the value of the named cookie in h's Cookie lines,
// without allocating (http.Request.Cookie parses every cookie).
func cookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				v := part[len(name)+1:]
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v
			}
		}
	}
	return ""
}

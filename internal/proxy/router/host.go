package router

import "strings"

// maxFoldedHost bounds the stack buffer used to lower-case a host without allocating.
// DNS names are at most 253 bytes; longer hosts fall back to an allocating path.
const maxFoldedHost = 256

// hostIndex selects the virtual host for a request's host.
type hostIndex struct {
	exact map[string]hostRef // lower-case hostname without trailing dot
	wild  map[string]hostRef // "*.example.com" stored as ".example.com"
	any   hostRef            // "*"
}

// hostRef is a compiled virtual host as one table places it: its routes' IDs in the
// table start at base.
type hostRef struct {
	v    *vhost
	base int32
}

// add registers a virtual host under its hostname pattern. When a pattern repeats, the
// first virtual host keeps it, as it would win a linear scan in match order.
func (h *hostIndex) add(hostname string, v hostRef) {
	name := strings.TrimSuffix(strings.ToLower(hostname), ".")
	switch {
	case name == "*":
		if h.any.v == nil {
			h.any = v
		}
	case strings.HasPrefix(name, "*."):
		if h.wild == nil {
			h.wild = map[string]hostRef{}
		}
		if _, dup := h.wild[name[1:]]; !dup {
			h.wild[name[1:]] = v
		}
	default:
		if h.exact == nil {
			h.exact = map[string]hostRef{}
		}
		if _, dup := h.exact[name]; !dup {
			h.exact[name] = v
		}
	}
}

// lookup returns the most specific virtual host for a raw Host header value (v nil for
// none).
func (h *hostIndex) lookup(raw string) hostRef {
	host := hostname(raw)
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return h.lookupFolded(host)
		}
	}
	return lookupHost(h, host)
}

// lookupFolded lower-cases host into a stack buffer and looks that up: mixed-case
// hosts cost a copy, not an allocation.
func (h *hostIndex) lookupFolded(host string) hostRef {
	if len(host) > maxFoldedHost {
		return lookupHost(h, strings.ToLower(host))
	}
	var buf [maxFoldedHost]byte
	b := buf[:len(host)]
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return lookupHost(h, b)
}

// lookupHost looks up a normalised, lower-case host. It is generic so that a folded
// host in a byte buffer is looked up without converting it to a string (map lookups
// keyed by string(b) do not allocate).
func lookupHost[S ~string | ~[]byte](h *hostIndex, host S) hostRef {
	if v, ok := h.exact[string(host)]; ok {
		return v
	}
	if len(h.wild) > 0 {
		// Scanning dots left to right tries the longest suffix first. A dot at index 0
		// would leave an empty label, which a wildcard does not match.
		for i := 1; i < len(host); i++ {
			if host[i] == '.' {
				if v, ok := h.wild[string(host[i:])]; ok {
					return v
				}
			}
		}
	}
	return h.any
}

// hostname strips the port (and the brackets of an IPv6 literal) and one trailing dot
// from a Host header value. It never allocates: the result is a substring.
func hostname(raw string) string {
	if strings.HasPrefix(raw, "[") {
		// "[v6]" or "[v6]:port". A missing "]" leaves the value as it is.
		if end := strings.IndexByte(raw, ']'); end > 0 {
			return raw[1:end]
		}
		return raw
	}
	// A single colon separates the port; more than one means a bare IPv6 literal,
	// which has no port.
	if i := strings.LastIndexByte(raw, ':'); i >= 0 && strings.IndexByte(raw, ':') == i {
		raw = raw[:i]
	}
	return strings.TrimSuffix(raw, ".")
}

// Package pluginutil holds small pieces shared by Portico's traffic-control plugins:
// request keys (consumer, ip, header, route), a duration type for JSON configs, and a
// reference-counted registry of process-wide state kept in plugin.Env.Shared.
package pluginutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"portico.dev/portico/internal/plugin"
)

// KeyKind says what a limit counts by.
type KeyKind uint8

// Key kinds, in the order of their configuration names.
const (
	KeyIP KeyKind = iota
	KeyConsumer
	KeyHeader
	KeyRoute
)

var kindNames = [...]string{"ip", "consumer", "header", "route"}

// String returns the kind's configuration name.
func (k KeyKind) String() string { return kindNames[k] }

// ParseKeyKind parses a configuration name; "" gives def.
func ParseKeyKind(s string, def KeyKind) (KeyKind, bool) {
	if s == "" {
		return def, true
	}
	for i, n := range kindNames {
		if n == s {
			return KeyKind(i), true
		}
	}
	return 0, false
}

// KeyNames lists the accepted key names, for error messages.
const KeyNames = "consumer, ip, header or route"

// Key identifies one counter: the route it belongs to, what it counts by, and the value.
// It is comparable and used directly as a map key (no string concatenation per request).
type Key struct {
	Route string
	Kind  KeyKind
	ID    string
}

// Clone copies the key's strings so a map entry does not pin request memory.
func (k Key) Clone() Key {
	return Key{Route: strings.Clone(k.Route), Kind: k.Kind, ID: strings.Clone(k.ID)}
}

// KeySource extracts a Key from a request context.
type KeySource struct {
	Kind KeyKind
	// Header is the canonical header name for KeyHeader.
	Header string
}

// NewKeySource returns a source for kind; header (for KeyHeader) is canonicalised.
func NewKeySource(kind KeyKind, header string) KeySource {
	return KeySource{Kind: kind, Header: textproto.CanonicalMIMEHeaderKey(header)}
}

// Of returns c's key. A consumer key with no identified consumer, and a header key
// whose header is absent or empty, fall back to the client IP.
func (s KeySource) Of(c *plugin.Context) Key {
	switch s.Kind {
	case KeyRoute:
		return Key{Route: c.Route, Kind: KeyRoute}
	case KeyConsumer:
		if c.Consumer != nil {
			return Key{Route: c.Route, Kind: KeyConsumer, ID: c.Consumer.Name}
		}
	case KeyHeader:
		if c.Request != nil {
			if v := c.Request.Header[s.Header]; len(v) > 0 && v[0] != "" {
				return Key{Route: c.Route, Kind: KeyHeader, ID: v[0]}
			}
		}
	}
	return Key{Route: c.Route, Kind: KeyIP, ID: ClientIP(c)}
}

// ClientIP is c.ClientIP, or the host of the request's peer address when unset.
func ClientIP(c *plugin.Context) string {
	if c.ClientIP != "" {
		return c.ClientIP
	}
	if c.Request != nil {
		if h, _, err := net.SplitHostPort(c.Request.RemoteAddr); err == nil {
			return h
		}
		return c.Request.RemoteAddr
	}
	return ""
}

// ValidHeaderName reports whether s is a usable HTTP header field name.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", ch) >= 0 {
			return false
		}
	}
	return true
}

// Duration is a time.Duration written in configs as a Go duration string ("1m",
// "1h30m") or as a number of seconds.
type Duration time.Duration

// UnmarshalJSON accepts "1m30s" or 90.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (use a Go duration such as \"30s\" or \"1m\")", s)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("a duration must be a string such as \"1m\" or a number of seconds")
	}
	*d = Duration(n * float64(time.Second))
	return nil
}

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// JSONReply is plugin.JSONError with extra headers (values set, not appended).
func JSONReply(status int, code, msg string, h http.Header) *plugin.Reply {
	r := plugin.JSONError(status, code, msg)
	for k, v := range h {
		r.Header[k] = v
	}
	return r
}

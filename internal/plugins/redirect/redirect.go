// Package redirect is the redirect plugin: it answers plaintext requests with a
// redirect to the same URL over HTTPS. See README.md for the user manual.
package redirect

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's configuration name.
const Name = "redirect"

// Config is the plugin's configuration.
type Config struct {
	// HTTPToHTTPS turns the redirect on; false makes the plugin do nothing (useful to
	// switch off, on one route, a redirect attached more broadly).
	HTTPToHTTPS bool `json:"httpToHttps"`
	// HTTPSPort is the port in the Location (default 443, which is left out).
	HTTPSPort int `json:"httpsPort,omitempty"`
	// StatusCode is 301 (default), 302, 307 or 308.
	StatusCode int `json:"statusCode,omitempty"`
	// TrustForwardedProto treats a request whose X-Forwarded-Proto is "https" as
	// already secure (only for gateways behind a TLS-terminating proxy).
	TrustForwardedProto bool `json:"trustForwardedProto,omitempty"`
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.HTTPSPort < 0 || c.HTTPSPort > 65535 {
		return &plugin.FieldError{Field: "httpsPort", Message: "must be between 1 and 65535"}
	}
	switch c.StatusCode {
	case 0, http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return &plugin.FieldError{Field: "statusCode", Message: "must be 301, 302, 307 or 308"}
	}
	return nil
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, _ *plugin.Env) (any, error) { return New(cfg.(*Config)), nil },
	})
}

// Plugin is one configured redirect instance.
type Plugin struct {
	on     bool
	trust  bool
	status int
	port   string // ":8443", or "" for 443
}

// New prepares an instance from a validated config.
func New(cfg *Config) *Plugin {
	p := &Plugin{on: cfg.HTTPToHTTPS, trust: cfg.TrustForwardedProto, status: cfg.StatusCode}
	if p.status == 0 {
		p.status = http.StatusMovedPermanently
	}
	if cfg.HTTPSPort != 0 && cfg.HTTPSPort != 443 {
		p.port = ":" + strconv.Itoa(cfg.HTTPSPort)
	}
	return p
}

// Rewrite answers a plaintext request with a redirect to https://host[:port]/path?query.
func (p *Plugin) Rewrite(c *plugin.Context) error {
	r := c.Request
	if !p.on || r.TLS != nil || (p.trust && forwardedHTTPS(r.Header)) {
		return nil
	}
	host := hostOnly(r.Host)
	if host == "" {
		return plugin.JSONError(http.StatusBadRequest, "bad_request", "missing Host")
	}
	var b strings.Builder
	b.Grow(len("https://") + len(host) + len(p.port) + len(r.URL.Path) + len(r.URL.RawQuery) + 8)
	b.WriteString("https://")
	b.WriteString(host)
	b.WriteString(p.port)
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	if r.URL.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(r.URL.RawQuery)
	}
	return &plugin.Reply{Status: p.status, Header: http.Header{"Location": {b.String()}}}
}

// forwardedHTTPS reports whether the first X-Forwarded-Proto value (set by the nearest
// trusted proxy) is https.
func forwardedHTTPS(h http.Header) bool {
	v := h["X-Forwarded-Proto"]
	if len(v) == 0 {
		return false
	}
	first, _, _ := strings.Cut(v[0], ",")
	return strings.EqualFold(strings.TrimSpace(first), "https")
}

// hostOnly strips the port from a Host value, keeping IPv6 brackets.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		if strings.IndexByte(h, ':') >= 0 {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}

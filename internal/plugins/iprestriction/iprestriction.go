// Package iprestriction is the ip-restriction plugin: it allows or denies requests by
// client address (IPs and CIDR ranges), and finds the client behind explicitly trusted
// proxies through X-Forwarded-For. See README.md for the user manual.
package iprestriction

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Name is the plugin's configuration name.
const Name = "ip-restriction"

// Config is the plugin's configuration. Exactly one of Allow and Deny is set.
type Config struct {
	// Allow lists the only addresses (IPs or CIDRs) let through.
	Allow []string `json:"allow,omitempty"`
	// Deny lists addresses refused; everything else is let through.
	Deny []string `json:"deny,omitempty"`
	// TrustedProxies lists the peers (IPs or CIDRs) whose X-Forwarded-For is believed.
	TrustedProxies []string `json:"trustedProxies,omitempty"`

	allow, deny, trusted []netip.Prefix
}

// Validate parses the lists. Errors name the entry ("allow[2]").
func (c *Config) Validate() error {
	if len(c.Allow) == 0 && len(c.Deny) == 0 {
		return &plugin.FieldError{Field: "allow", Message: "set exactly one of allow and deny"}
	}
	if len(c.Allow) > 0 && len(c.Deny) > 0 {
		return &plugin.FieldError{Field: "deny", Message: "set exactly one of allow and deny, not both"}
	}
	var err error
	if c.allow, err = parseList("allow", c.Allow); err != nil {
		return err
	}
	if c.deny, err = parseList("deny", c.Deny); err != nil {
		return err
	}
	c.trusted, err = parseList("trustedProxies", c.TrustedProxies)
	return err
}

func parseList(field string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, &plugin.FieldError{Field: field + "[" + strconv.Itoa(i) + "]", Message: "not an IP address or CIDR: " + strconv.Quote(s)}
		}
		out = append(out, p)
	}
	return out, nil
}

// parsePrefix accepts "10.0.0.0/8" or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, _ *plugin.Env) (any, error) { return &Plugin{cfg: cfg.(*Config)}, nil },
	})
}

// Plugin is one configured ip-restriction instance.
type Plugin struct{ cfg *Config }

// Access resolves the client address and answers 403 when it is not allowed. When the
// address came from X-Forwarded-For, it also becomes c.ClientIP for later plugins.
func (p *Plugin) Access(c *plugin.Context) error {
	ip, fromXFF, ok := p.clientAddr(c)
	if !ok || !p.allowed(ip) {
		return plugin.JSONError(http.StatusForbidden, "ip_forbidden", "your IP address is not allowed")
	}
	if fromXFF {
		c.ClientIP = ip.String()
	}
	return nil
}

func (p *Plugin) allowed(ip netip.Addr) bool {
	if len(p.cfg.allow) > 0 {
		return contains(p.cfg.allow, ip)
	}
	return !contains(p.cfg.deny, ip)
}

func contains(list []netip.Prefix, ip netip.Addr) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientAddr is the direct peer, or — when the peer is a trusted proxy — the right-most
// X-Forwarded-For entry that is not itself a trusted proxy (the left-most entry when all
// are trusted). An unparseable address reports !ok, which is refused.
func (p *Plugin) clientAddr(c *plugin.Context) (addr netip.Addr, fromXFF, ok bool) {
	peer, ok := parseAddr(peerOf(c))
	if !ok || !contains(p.cfg.trusted, peer) || c.Request == nil {
		return peer, false, ok
	}
	lines := c.Request.Header["X-Forwarded-For"]
	addr = peer
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			var entry string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				entry, rest = rest, ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a, ok := parseAddr(entry)
			if !ok {
				return a, true, false
			}
			addr, fromXFF = a, true
			if !contains(p.cfg.trusted, a) {
				return addr, true, true
			}
		}
	}
	return addr, fromXFF, true
}

// peerOf is the direct peer's address: the connection's remote address, or
// c.ClientIP when the request carries none.
func peerOf(c *plugin.Context) string {
	if c.Request != nil && c.Request.RemoteAddr != "" {
		if h, _, err := net.SplitHostPort(c.Request.RemoteAddr); err == nil {
			return h
		}
		return c.Request.RemoteAddr
	}
	return pluginutil.ClientIP(c)
}

// parseAddr accepts an address, optionally with a port ("1.2.3.4:80", "[::1]:80").
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

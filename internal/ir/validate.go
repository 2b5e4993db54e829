package ir

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
)

// Validate checks that a snapshot is internally consistent, so that a data plane can
// compile it without failing half way. Translation only emits valid snapshots; this is
// the gate before publishing, and the check a remote data plane runs on what it receives.
func (s *Snapshot) Validate() error { return s.ValidateFrom(nil) }

// ValidateFrom is Validate for a snapshot that shares parts with prev, a snapshot that
// passed Validate and has not been modified since (nil: none), as a snapshot rebuilt
// from a delta shares its unchanged items with the one before. It gives Validate's
// verdict while checking only what may have changed: the routes of a virtual host whose
// Routes slice is one of prev's (same backing array and length) and the endpoints of an
// upstream whose Endpoints slice is one of prev's are not checked again, except that
// such routes' upstream references are checked again when an upstream of prev is gone.
// Everything else (names, listeners, certificates, stream routes, consumers) is checked
// in full.
func (s *Snapshot) ValidateFrom(prev *Snapshot) error {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	known := knownParts(prev)

	upstreams := make(map[string]bool, len(s.Upstreams))
	for i := range s.Upstreams {
		u := &s.Upstreams[i]
		if upstreams[u.Name] {
			fail("upstream %q: duplicate name", u.Name)
		}
		upstreams[u.Name] = true
		if len(u.Endpoints) > 0 && known.endpoints[&u.Endpoints[0]] == len(u.Endpoints) {
			continue
		}
		for _, e := range u.Endpoints {
			if _, _, err := net.SplitHostPort(e.Address); err != nil {
				fail("upstream %q: endpoint %q: %v", u.Name, e.Address, err)
			}
			if e.Weight < 1 {
				fail("upstream %q: endpoint %q: weight %d < 1", u.Name, e.Address, e.Weight)
			}
		}
	}
	upstreamGone := false
	if prev != nil {
		for i := range prev.Upstreams {
			upstreamGone = upstreamGone || !upstreams[prev.Upstreams[i].Name]
		}
	}
	certs := make(map[string]bool, len(s.Certificates))
	for _, c := range s.Certificates {
		certs[c.Name] = true
	}
	listeners := make(map[string]bool, len(s.Listeners))
	for i := range s.Listeners {
		l := &s.Listeners[i]
		if listeners[l.Name] {
			fail("listener %q: duplicate", l.Name)
		}
		listeners[l.Name] = true
		if l.Port < 1 || l.Port > 65535 {
			fail("listener %q: port %d out of range", l.Name, l.Port)
		}
		for _, c := range l.Certificates {
			if !certs[c] {
				fail("listener %q: unknown certificate %q", l.Name, c)
			}
		}
		if (l.Protocol == HTTPS) && len(l.Certificates) == 0 {
			fail("listener %q: HTTPS without a certificate", l.Name)
		}
		for j := range l.VirtualHosts {
			vh := &l.VirtualHosts[j]
			checked := len(vh.Routes) > 0 && known.routes[&vh.Routes[0]] == len(vh.Routes)
			if checked && !upstreamGone {
				continue
			}
			for k := range vh.Routes {
				rc := routeCheck{listener: l.Name, host: vh.Hostname, r: &vh.Routes[k], fail: fail}
				if checked {
					rc.references(upstreams)
				} else {
					rc.validate(upstreams)
				}
			}
		}
	}
	for _, sr := range s.StreamRoutes {
		if !listeners[sr.Listener] {
			fail("stream route %q: unknown listener %q", sr.Name, sr.Listener)
		}
		for _, b := range sr.Backends {
			if !upstreams[b.Upstream] {
				fail("stream route %q: unknown upstream %q", sr.Name, b.Upstream)
			}
		}
	}
	consumers := make(map[string]bool, len(s.Consumers))
	for _, c := range s.Consumers {
		if c.Name == "" {
			fail("consumer without a name")
		} else if consumers[c.Name] {
			fail("consumer %q: duplicate name", c.Name)
		}
		consumers[c.Name] = true
		for _, cr := range c.Credentials {
			if cr.Type == "" {
				fail("consumer %q: credential without a type", c.Name)
			}
		}
		validatePlugins(fmt.Sprintf("consumer %q", c.Name), c.Plugins, fail)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid snapshot: %s", strings.Join(errs, "; "))
	}
	return nil
}

// parts are the route and endpoint lists of a validated snapshot, by the address of
// their first element, with their lengths.
type parts struct {
	routes    map[*Route]int
	endpoints map[*Endpoint]int
}

func knownParts(prev *Snapshot) parts {
	var p parts
	if prev == nil {
		return p
	}
	p.routes = map[*Route]int{}
	for i := range prev.Listeners {
		for _, vh := range prev.Listeners[i].VirtualHosts {
			if len(vh.Routes) > 0 {
				p.routes[&vh.Routes[0]] = len(vh.Routes)
			}
		}
	}
	p.endpoints = make(map[*Endpoint]int, len(prev.Upstreams))
	for _, u := range prev.Upstreams {
		if len(u.Endpoints) > 0 {
			p.endpoints[&u.Endpoints[0]] = len(u.Endpoints)
		}
	}
	return p
}

// routeCheck validates one route; the text naming it is built only for an error.
type routeCheck struct {
	listener, host string
	r              *Route
	fail           func(string, ...any)
}

func (c *routeCheck) where() string {
	return fmt.Sprintf("listener %q host %q route %q", c.listener, c.host, c.r.Name)
}

func (c *routeCheck) validate(upstreams map[string]bool) {
	r := c.r
	switch r.Path.Type {
	case MatchExact, MatchPrefix:
		if !strings.HasPrefix(r.Path.Value, "/") {
			c.fail("%s: path %q must start with /", c.where(), r.Path.Value)
		}
	case MatchRegex:
		if _, err := regexp.Compile(r.Path.Value); err != nil {
			c.fail("%s: path regex: %v", c.where(), err)
		}
	default:
		c.fail("%s: unknown path match type %q", c.where(), r.Path.Type)
	}
	for _, ms := range [][]ValueMatch{r.Headers, r.QueryParams} {
		for _, m := range ms {
			if m.Type == MatchRegex {
				if _, err := regexp.Compile(m.Value); err != nil {
					c.fail("%s: %s regex: %v", c.where(), m.Name, err)
				}
			}
		}
	}
	c.references(upstreams)
	if len(r.Plugins) > 0 {
		validatePlugins(c.where(), r.Plugins, c.fail)
	}
	if rd := r.Redirect; rd != nil {
		switch rd.StatusCode {
		case 301, 302, 303, 307, 308:
		default:
			c.fail("%s: redirect status %d", c.where(), rd.StatusCode)
		}
	}
}

// references checks that the route's backends name known upstreams.
func (c *routeCheck) references(upstreams map[string]bool) {
	for _, b := range c.r.Backends {
		if !upstreams[b.Upstream] {
			c.fail("%s: unknown upstream %q", c.where(), b.Upstream)
		}
	}
}

// validatePlugins checks that plugin specs are named, once each, with JSON configs.
func validatePlugins(where string, specs []PluginSpec, fail func(string, ...any)) {
	seen := map[string]bool{}
	for i, p := range specs {
		switch {
		case p.Name == "":
			fail("%s: plugin %d without a name", where, i)
		case seen[p.Name]:
			fail("%s: plugin %q twice", where, p.Name)
		}
		seen[p.Name] = true
		if len(p.Config) > 0 && !json.Valid(p.Config) {
			fail("%s: plugin %q: config is not valid JSON", where, p.Name)
		}
	}
}

// Redacted returns a copy safe to show: private keys (certificates' and upstream
// client keys) and consumers' credential fields (even hashed) are replaced; a
// credential keeps its type and field names.
func (s *Snapshot) Redacted() *Snapshot {
	c := *s
	c.Certificates = make([]Certificate, len(s.Certificates))
	for i, cert := range s.Certificates {
		cert.Key = "<redacted>"
		c.Certificates[i] = cert
	}
	c.Upstreams = make([]Upstream, len(s.Upstreams))
	for i, u := range s.Upstreams {
		if u.TLS != nil && u.TLS.ClientKey != "" {
			t := *u.TLS
			t.ClientKey = "<redacted>"
			u.TLS = &t
		}
		c.Upstreams[i] = u
	}
	c.Consumers = make([]Consumer, len(s.Consumers))
	for i, cons := range s.Consumers {
		creds := make([]Credential, len(cons.Credentials))
		for j, cr := range cons.Credentials {
			fields := make(map[string]string, len(cr.Fields))
			for k := range cr.Fields {
				fields[k] = "<redacted>"
			}
			creds[j] = Credential{Type: cr.Type, Fields: fields}
		}
		cons.Credentials = creds
		cons.Plugins = redactPlugins(cons.Plugins)
		c.Consumers[i] = cons
	}
	c.Listeners = make([]Listener, len(s.Listeners))
	for i, l := range s.Listeners {
		vhs := make([]VirtualHost, len(l.VirtualHosts))
		for j, vh := range l.VirtualHosts {
			routes := make([]Route, len(vh.Routes))
			for k, r := range vh.Routes {
				r.Plugins = redactPlugins(r.Plugins)
				routes[k] = r
			}
			vh.Routes = routes
			vhs[j] = vh
		}
		l.VirtualHosts = vhs
		c.Listeners[i] = l
	}
	return &c
}

package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
)

// Validate checks that a snapshot is internally consistent, so that a data plane can
// compile it without failing half way. Translation only emits valid snapshots; this is
// the gate before publishing, and the check a remote data plane runs on what it receives.
func (s *Snapshot) Validate() error {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	upstreams := map[string]bool{}
	for _, u := range s.Upstreams {
		if upstreams[u.Name] {
			fail("upstream %q: duplicate name", u.Name)
		}
		upstreams[u.Name] = true
		for _, e := range u.Endpoints {
			if _, _, err := net.SplitHostPort(e.Address); err != nil {
				fail("upstream %q: endpoint %q: %v", u.Name, e.Address, err)
			}
			if e.Weight < 1 {
				fail("upstream %q: endpoint %q: weight %d < 1", u.Name, e.Address, e.Weight)
			}
		}
	}
	certs := map[string]bool{}
	for _, c := range s.Certificates {
		certs[c.Name] = true
	}
	listeners := map[string]bool{}
	for _, l := range s.Listeners {
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
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				validateRoute(l.Name, vh.Hostname, &r, upstreams, fail)
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
	consumers := map[string]bool{}
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

func validateRoute(listener, host string, r *Route, upstreams map[string]bool, fail func(string, ...any)) {
	where := fmt.Sprintf("listener %q host %q route %q", listener, host, r.Name)
	switch r.Path.Type {
	case MatchExact, MatchPrefix:
		if !strings.HasPrefix(r.Path.Value, "/") {
			fail("%s: path %q must start with /", where, r.Path.Value)
		}
	case MatchRegex:
		if _, err := regexp.Compile(r.Path.Value); err != nil {
			fail("%s: path regex: %v", where, err)
		}
	default:
		fail("%s: unknown path match type %q", where, r.Path.Type)
	}
	for _, m := range append(append([]ValueMatch(nil), r.Headers...), r.QueryParams...) {
		if m.Type == MatchRegex {
			if _, err := regexp.Compile(m.Value); err != nil {
				fail("%s: %s regex: %v", where, m.Name, err)
			}
		}
	}
	for _, b := range r.Backends {
		if !upstreams[b.Upstream] {
			fail("%s: unknown upstream %q", where, b.Upstream)
		}
	}
	validatePlugins(where, r.Plugins, fail)
	if rd := r.Redirect; rd != nil {
		switch rd.StatusCode {
		case 301, 302, 303, 307, 308:
		default:
			fail("%s: redirect status %d", where, rd.StatusCode)
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

// ComputeVersion sets Version to a hash of the content, so equal configs have equal versions.
func (s *Snapshot) ComputeVersion() {
	s.Version = ""
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	s.Version = hex.EncodeToString(sum[:8])
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

package v1alpha1

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FieldError is one problem with one field of an object. Field is a path such as
// "spec.matches[0].path.value", so every source (files, the admin API, Kubernetes) can
// point the user at the exact spot.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error renders the problem as "field: message".
func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// fieldErrors collects problems; validation never stops at the first one.
type fieldErrors []FieldError

func (e *fieldErrors) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func at(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Validate checks a Gateway on its own (references to other objects are translation's
// business) and returns every problem found.
func (g *Gateway) Validate() []FieldError {
	var errs fieldErrors
	validateMeta(&errs, g.TypeMeta, &g.Metadata, KindGateway)
	ls := g.Spec.Listeners
	if len(ls) == 0 {
		errs.add("spec.listeners", "at least one listener is required")
	}
	names := map[string]int{}
	sockets := map[string]int{}
	for i := range ls {
		l := &ls[i]
		p := at("spec.listeners", i)
		checkName(&errs, p+".name", l.Name)
		if j, dup := names[l.Name]; dup && l.Name != "" {
			errs.add(p+".name", "duplicate of %s", at("spec.listeners", j))
		} else {
			names[l.Name] = i
		}
		if l.Port < 1 || l.Port > 65535 {
			errs.add(p+".port", "must be between 1 and 65535, got %d", l.Port)
		}
		validateListenerProtocol(&errs, p, l)
		// The same socket, protocol and hostname twice in one gateway is always a mistake;
		// different protocols on one port are a conflict translation reports.
		socket := fmt.Sprintf("%s|%d|%s|%s", l.Address, l.Port, l.Protocol, strings.ToLower(l.Hostname))
		if j, dup := sockets[socket]; dup {
			errs.add(p, "duplicate of %s: same address, port, protocol and hostname", at("spec.listeners", j))
		} else {
			sockets[socket] = i
		}
	}
	validatePluginRefs(&errs, "spec.plugins", g.Spec.Plugins)
	return errs
}

func validateListenerProtocol(errs *fieldErrors, p string, l *Listener) {
	switch l.Protocol {
	case ProtocolHTTP, ProtocolHTTPS, ProtocolTCP, ProtocolTLS, ProtocolUDP:
	case "":
		errs.add(p+".protocol", "required: one of HTTP, HTTPS, TCP, TLS, UDP")
	default:
		errs.add(p+".protocol", "unknown protocol %q: one of HTTP, HTTPS, TCP, TLS, UDP", l.Protocol)
	}
	if l.Address != "" && net.ParseIP(l.Address) == nil {
		errs.add(p+".address", "must be an IP address, got %q", l.Address)
	}
	if l.Hostname != "" {
		switch l.Protocol {
		case ProtocolTCP, ProtocolUDP:
			errs.add(p+".hostname", "not allowed for protocol %s (only HTTP, HTTPS and TLS)", l.Protocol)
		default:
			checkHost(errs, p+".hostname", l.Hostname, true)
		}
	}
	switch {
	case l.Protocol == ProtocolHTTPS && (l.TLS == nil || len(l.TLS.CertificateRefs) == 0):
		errs.add(p+".tls.certificateRefs", "an HTTPS listener needs at least one certificate")
	case l.TLS != nil && (l.Protocol == ProtocolHTTP || l.Protocol == ProtocolTCP || l.Protocol == ProtocolUDP):
		errs.add(p+".tls", "not allowed for protocol %s (only HTTPS and TLS)", l.Protocol)
	}
	if l.TLS != nil {
		checkNames(errs, p+".tls.certificateRefs", l.TLS.CertificateRefs)
	}
	if l.ProxyProtocol != nil {
		validateProxyProtocolAccept(errs, p+".proxyProtocol", l)
	}
}

// Validate checks a Route on its own and returns every problem found.
func (r *Route) Validate() []FieldError {
	var errs fieldErrors
	validateMeta(&errs, r.TypeMeta, &r.Metadata, KindRoute)
	s := &r.Spec
	checkNames(&errs, "spec.gateways", s.Gateways)
	checkHosts(&errs, "spec.hosts", s.Hosts, true)
	for i := range s.Matches {
		validateMatch(&errs, at("spec.matches", i), &s.Matches[i])
	}
	validateFilters(&errs, s)
	validateBackends(&errs, s.Backends, false)
	validatePluginRefs(&errs, "spec.plugins", s.Plugins)
	validateRouteTraffic(&errs, s)
	return errs
}

// httpMethods are the methods a match may name (the Gateway API list).
var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

func validateMatch(errs *fieldErrors, p string, m *RouteMatch) {
	if m.Path != nil {
		validatePath(errs, p+".path", m.Path)
	}
	if m.Method != "" && !httpMethods[m.Method] {
		errs.add(p+".method", "unknown method %q: one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH (upper case)", m.Method)
	}
	seen := map[string]int{}
	for j := range m.Headers {
		h := &m.Headers[j]
		hp := at(p+".headers", j)
		if !validHeaderName(h.Name) {
			errs.add(hp+".name", "invalid header name %q", h.Name)
		}
		key := strings.ToLower(h.Name)
		if k, dup := seen[key]; dup {
			errs.add(hp+".name", "duplicate of %s (header names are case-insensitive)", at(p+".headers", k))
		} else {
			seen[key] = j
		}
		validateValueMatch(errs, hp, h)
	}
	seen = map[string]int{}
	for j := range m.QueryParams {
		q := &m.QueryParams[j]
		qp := at(p+".queryParams", j)
		if q.Name == "" || strings.ContainsAny(q.Name, "&=#? \t\r\n") {
			errs.add(qp+".name", "invalid query parameter name %q", q.Name)
		}
		if k, dup := seen[q.Name]; dup {
			errs.add(qp+".name", "duplicate of %s", at(p+".queryParams", k))
		} else {
			seen[q.Name] = j
		}
		validateValueMatch(errs, qp, q)
	}
}

func validatePath(errs *fieldErrors, p string, m *PathMatch) {
	switch m.Type {
	case "", PathExact, PathPrefix:
		checkPathValue(errs, p+".value", m.Value, false)
	case PathRegex:
		checkRegex(errs, p+".value", m.Value)
	default:
		errs.add(p+".type", "unknown path match type %q: one of Exact, PathPrefix, RegularExpression", m.Type)
	}
}

// checkPathValue checks a literal path. allowEmpty serves ReplacePrefixMatch, where
// "" strips the matched prefix.
func checkPathValue(errs *fieldErrors, field, v string, allowEmpty bool) {
	switch {
	case v == "" && allowEmpty:
	case !strings.HasPrefix(v, "/"):
		errs.add(field, "must start with \"/\"")
	case strings.ContainsAny(v, "?#"):
		errs.add(field, "must not contain \"?\" or \"#\" (a path has no query or fragment)")
	case strings.Contains(v, "//"):
		errs.add(field, "must not contain \"//\"")
	case hasSpaceOrControl(v):
		errs.add(field, "must not contain spaces or control characters")
	}
}

func validateValueMatch(errs *fieldErrors, p string, m *ValueMatch) {
	switch m.Type {
	case "", MatchExact:
		if strings.ContainsAny(m.Value, "\r\n\x00") {
			errs.add(p+".value", "must not contain CR, LF or NUL")
		}
	case MatchRegex:
		checkRegex(errs, p+".value", m.Value)
	default:
		errs.add(p+".type", "unknown match type %q: one of Exact, RegularExpression", m.Type)
	}
}

func validateBackends(errs *fieldErrors, bs []Backend, required bool) {
	if required && len(bs) == 0 {
		errs.add("spec.backends", "at least one backend is required")
	}
	for i, b := range bs {
		p := at("spec.backends", i)
		checkName(errs, p+".upstream", b.Upstream)
		if b.Weight != nil && (*b.Weight < 0 || *b.Weight > 1000000) {
			errs.add(p+".weight", "must be between 0 and 1000000, got %d", *b.Weight)
		}
	}
}

// Validate checks a Certificate and returns every problem found. It checks the PEM
// data (and that the key matches the certificate) only when the data is inline: the
// file loader inlines certFile/keyFile before validating.
func (c *Certificate) Validate() []FieldError {
	var errs fieldErrors
	validateMeta(&errs, c.TypeMeta, &c.Metadata, KindCertificate)
	s := &c.Spec
	checkHosts(&errs, "spec.hosts", s.Hosts, true)
	switch {
	case s.Cert == "" && s.CertFile == "":
		errs.add("spec.cert", "required: set cert (PEM) or certFile")
	case s.Cert != "" && s.CertFile != "":
		errs.add("spec.certFile", "set cert or certFile, not both")
	}
	switch {
	case s.Key == "" && s.KeyFile == "":
		errs.add("spec.key", "required: set key (PEM) or keyFile")
	case s.Key != "" && s.KeyFile != "":
		errs.add("spec.keyFile", "set key or keyFile, not both")
	}
	switch {
	case s.Cert != "" && s.Key != "":
		if _, err := tls.X509KeyPair([]byte(s.Cert), []byte(s.Key)); err != nil {
			errs.add("spec.cert", "invalid certificate or key: %v", err)
		}
	case s.Cert != "":
		if _, err := ParseCertificatePEM(s.Cert); err != nil {
			errs.add("spec.cert", "%v", err)
		}
	}
	return errs
}

// ParseCertificatePEM returns the first (leaf) certificate of a PEM chain. Validation
// and translation (which reads the DNS names) share it.
func ParseCertificatePEM(data string) (*x509.Certificate, error) {
	rest := []byte(data)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no PEM CERTIFICATE block found")
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("invalid certificate: %v", err)
			}
			return cert, nil
		}
	}
}

// Validate checks a StreamRoute on its own and returns every problem found.
func (r *StreamRoute) Validate() []FieldError {
	var errs fieldErrors
	validateMeta(&errs, r.TypeMeta, &r.Metadata, KindStreamRoute)
	checkNames(&errs, "spec.gateways", r.Spec.Gateways)
	checkName(&errs, "spec.listener", r.Spec.Listener)
	checkHosts(&errs, "spec.sni", r.Spec.SNI, true)
	validateBackends(&errs, r.Spec.Backends, true)
	checkDuration(&errs, "spec.idleTimeout", r.Spec.IdleTimeout, true)
	return errs
}

func validateMeta(errs *fieldErrors, tm TypeMeta, m *ObjectMeta, kind string) {
	switch tm.APIVersion {
	case APIVersion:
	case "":
		errs.add("apiVersion", "required: %q", APIVersion)
	default:
		errs.add("apiVersion", "must be %q, got %q", APIVersion, tm.APIVersion)
	}
	if tm.Kind != kind {
		errs.add("kind", "must be %q, got %q", kind, tm.Kind)
	}
	checkName(errs, "metadata.name", m.Name)
	if m.Namespace != "" && (len(m.Namespace) > 63 || !dnsLabel.MatchString(m.Namespace)) {
		errs.add("metadata.namespace", "must be a DNS label (lower-case letters, digits and '-', at most 63), got %q", m.Namespace)
	}
	for k := range m.Labels {
		if k == "" || len(k) > 253 || hasSpaceOrControl(k) {
			errs.add("metadata.labels", "invalid label key %q", k)
		}
	}
	if ts := m.CreationTimestamp; ts != "" {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			errs.add("metadata.creationTimestamp", "must be an RFC 3339 time, got %q", ts)
		}
	}
}

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// checkName checks an object name or a reference to one: a DNS-1123 subdomain.
func checkName(errs *fieldErrors, field, name string) {
	switch {
	case name == "":
		errs.add(field, "required")
	case len(name) > 253 || !dnsSubdomain.MatchString(name):
		errs.add(field, "invalid name %q: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", name)
	}
}

// checkNames checks a list of names and reports duplicates.
func checkNames(errs *fieldErrors, field string, names []string) {
	seen := map[string]int{}
	for i, n := range names {
		checkName(errs, at(field, i), n)
		if j, dup := seen[n]; dup {
			errs.add(at(field, i), "duplicate of %s", at(field, j))
		} else {
			seen[n] = i
		}
	}
}

// checkHosts checks a list of host patterns and reports duplicates (case-insensitive).
func checkHosts(errs *fieldErrors, field string, hosts []string, wildcard bool) {
	seen := map[string]int{}
	for i, h := range hosts {
		checkHost(errs, at(field, i), h, wildcard)
		key := strings.ToLower(h)
		if j, dup := seen[key]; dup {
			errs.add(at(field, i), "duplicate of %s", at(field, j))
		} else {
			seen[key] = i
		}
	}
}

// checkHost checks a DNS name, or with wildcard a leading "*." wildcard. Upper case is
// accepted (translation lower-cases); IP addresses and ports are not.
func checkHost(errs *fieldErrors, field, host string, wildcard bool) {
	name := strings.ToLower(host)
	if wildcard && strings.HasPrefix(name, "*.") {
		name = name[2:]
	}
	switch {
	case host == "":
		errs.add(field, "must not be empty")
	case host == "*" && wildcard:
		errs.add(field, "\"*\" is not a host pattern: leave the list empty to match any host")
	case strings.Contains(name, "*"):
		if wildcard {
			errs.add(field, "invalid host %q: a wildcard is only allowed as a leading \"*.\"", host)
		} else {
			errs.add(field, "invalid host %q: wildcards are not allowed here", host)
		}
	case net.ParseIP(name) != nil:
		errs.add(field, "invalid host %q: must be a DNS name, not an IP address", host)
	case strings.Contains(name, ":"):
		errs.add(field, "invalid host %q: must not include a port", host)
	case len(name) > 253 || !dnsSubdomain.MatchString(name) || hasLongLabel(name):
		errs.add(field, "invalid host %q: must be a DNS name (letters, digits, '-' and '.')", host)
	}
}

func hasLongLabel(name string) bool {
	for label := range strings.SplitSeq(name, ".") {
		if len(label) > 63 {
			return true
		}
	}
	return false
}

// checkHostPort checks an endpoint address "host:port" with a numeric port.
func checkHostPort(errs *fieldErrors, field, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		errs.add(field, "must be host:port, got %q", addr)
		return
	}
	if host == "" || hasSpaceOrControl(host) {
		errs.add(field, "missing or invalid host in %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs.add(field, "port must be a number between 1 and 65535 in %q", addr)
	}
}

// checkDuration checks a Go duration string; empty is allowed. positive rejects zero.
func checkDuration(errs *fieldErrors, field, v string, positive bool) {
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		errs.add(field, "invalid duration %q (use Go syntax such as \"15s\" or \"1m30s\")", v)
	case d < 0:
		errs.add(field, "must not be negative, got %q", v)
	case positive && d == 0:
		errs.add(field, "must be greater than zero")
	}
}

func checkRegex(errs *fieldErrors, field, expr string) {
	if expr == "" {
		errs.add(field, "required: a regular expression")
		return
	}
	if _, err := regexp.Compile(expr); err != nil {
		errs.add(field, "invalid regular expression (RE2 syntax): %v", err)
	}
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 field name).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func hasSpaceOrControl(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return true
		}
	}
	return false
}

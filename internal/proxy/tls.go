package proxy

import (
	"crypto/tls"
	"fmt"
	"strings"

	"portico.dev/portico/internal/ir"
)

// certCache keeps parsed certificates across swaps, keyed by name and reused while
// the PEM is unchanged, so a swap with thousands of certificates does not re-parse
// them all.
type certCache map[string]*cachedCert

type cachedCert struct {
	cert, key string
	parsed    *tls.Certificate
}

// load parses (or reuses) every certificate of a snapshot. Entries it adds for a
// swap that then fails are harmless: the next successful swap prunes them (retain).
func (c certCache) load(certs []ir.Certificate) (map[string]loadedCert, error) {
	out := make(map[string]loadedCert, len(certs))
	for _, ic := range certs {
		if e := c[ic.Name]; e != nil && e.cert == ic.Cert && e.key == ic.Key {
			out[ic.Name] = loadedCert{e.parsed, ic.Hosts}
			continue
		}
		kp, err := tls.X509KeyPair([]byte(ic.Cert), []byte(ic.Key))
		if err != nil {
			return nil, fmt.Errorf("proxy: certificate %q: %w", ic.Name, err)
		}
		c[ic.Name] = &cachedCert{cert: ic.Cert, key: ic.Key, parsed: &kp}
		out[ic.Name] = loadedCert{&kp, ic.Hosts}
	}
	return out, nil
}

// loadedCert is a parsed certificate and the hosts it serves.
type loadedCert struct {
	cert  *tls.Certificate
	hosts []string
}

// retain drops cache entries the snapshot in force no longer names.
func (c certCache) retain(certs []ir.Certificate) {
	keep := make(map[string]bool, len(certs))
	for _, ic := range certs {
		keep[ic.Name] = true
	}
	for name := range c {
		if !keep[name] {
			delete(c, name)
		}
	}
}

// certSelector picks a listener's certificate by SNI: an exact host, then the
// longest wildcard ("*.example.com" covers one or more labels before the suffix, as
// the router treats hostnames), else the listener's first (default) certificate, so
// clients without SNI or with an unknown name still complete the handshake.
type certSelector struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // key: ".example.com"
	def      *tls.Certificate
}

func newCertSelector(l *ir.Listener, loaded map[string]loadedCert) (*certSelector, error) {
	s := &certSelector{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for _, name := range l.Certificates {
		lc, ok := loaded[name]
		if !ok {
			return nil, fmt.Errorf("proxy: listener %q: unknown certificate %q", l.Name, name)
		}
		c := lc.cert
		if s.def == nil {
			s.def = c
		}
		for _, h := range lc.hosts {
			h = strings.TrimSuffix(strings.ToLower(h), ".")
			switch {
			case h == "*" || h == "":
				// Any host: the default role is already given to the first certificate.
			case strings.HasPrefix(h, "*."):
				if s.wildcard[h[1:]] == nil {
					s.wildcard[h[1:]] = c
				}
			default:
				if s.exact[h] == nil {
					s.exact[h] = c
				}
			}
		}
	}
	return s, nil
}

func (s *certSelector) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := hello.ServerName
	if name != "" {
		name = strings.TrimSuffix(strings.ToLower(name), ".")
		if c := s.exact[name]; c != nil {
			return c, nil
		}
		for i := strings.IndexByte(name, '.'); i >= 0 && len(s.wildcard) > 0; {
			if c := s.wildcard[name[i:]]; c != nil {
				return c, nil
			}
			j := strings.IndexByte(name[i+1:], '.')
			if j < 0 {
				break
			}
			i += j + 1
		}
	}
	return s.def, nil
}

// tlsConfig builds the server TLS configuration of an HTTPS listener: TLS 1.2+,
// ALPN h2 then http/1.1, certificates by SNI.
func (s *certSelector) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: s.get,
	}
}

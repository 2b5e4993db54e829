package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/ir"
)

// Upstream is the live state of one upstream definition: its endpoints, its
// balancer and its connections. It is safe for concurrent use and stays
// usable after it is retired (requests still running on an old snapshot
// finish normally; their connections are just not kept).
type Upstream struct {
	def       ir.Upstream
	opts      Options
	eps       []*Endpoint
	bal       Balancer
	dialer    net.Dialer
	h2        *http.Transport // "h2" and "h2c"
	h2scheme  string
	retired   atomic.Bool
	h2Cleanup *time.Timer
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.def.Name }

// Endpoints returns the live endpoints (read-only).
func (u *Upstream) Endpoints() []*Endpoint { return u.eps }

// Balancer returns the upstream's balancer.
func (u *Upstream) Balancer() Balancer { return u.bal }

func newUpstream(def ir.Upstream, opts Options) (*Upstream, error) {
	u := &Upstream{def: def, opts: opts}
	u.dialer = net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	proto := def.Protocol
	if proto == "" {
		proto = ir.UpstreamHTTP
	}
	var base *tls.Config
	switch proto {
	case ir.UpstreamHTTP, ir.UpstreamH2C:
	case ir.UpstreamHTTPS, ir.UpstreamH2:
		var err error
		if base, err = baseTLSConfig(def.TLS); err != nil {
			return nil, fmt.Errorf("upstream %q: %w", def.Name, err)
		}
	default:
		return nil, fmt.Errorf("upstream %q: unknown protocol %q", def.Name, def.Protocol)
	}
	u.eps = make([]*Endpoint, len(def.Endpoints))
	for i, d := range def.Endpoints {
		host, _, err := net.SplitHostPort(d.Address)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: endpoint %q: %w", def.Name, d.Address, err)
		}
		w := d.Weight
		if w < 1 {
			w = 1
		}
		ep := &Endpoint{Address: d.Address, Weight: w, up: u}
		ep.pool.init(opts.MaxIdlePerEndpoint, opts.IdleConnTimeout)
		if proto == ir.UpstreamHTTPS {
			ep.tlsConf = base.Clone()
			if ep.tlsConf.ServerName == "" {
				ep.tlsConf.ServerName = host
			}
			ep.tlsConf.NextProtos = []string{"http/1.1"}
		}
		u.eps[i] = ep
	}
	bal, ok := newBalancer(def.Algorithm, u.eps)
	if !ok {
		opts.Logger.Warn("load-balancing algorithm not implemented, using round-robin",
			"upstream", def.Name, "algorithm", def.Algorithm)
	}
	u.bal = bal
	if proto == ir.UpstreamH2 || proto == ir.UpstreamH2C {
		u.h2 = u.newH2Transport(proto, base)
	}
	return u, nil
}

// baseTLSConfig builds the TLS settings shared by an upstream's endpoints.
func baseTLSConfig(t *ir.UpstreamTLS) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	if t == nil {
		return c, nil
	}
	c.ServerName = t.SNI
	c.InsecureSkipVerify = t.InsecureSkipVerify
	if t.CACertificate != "" {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM([]byte(t.CACertificate)) {
			return nil, errors.New("tls.caCertificate: no valid PEM certificate")
		}
		c.RootCAs = roots
	}
	return c, nil
}

// RoundTrip sends req to an endpoint chosen by the balancer. req.URL.Path,
// req.URL.RawQuery, req.Host, req.Method, req.Header and
// req.Body/ContentLength are sent as given: the caller has already applied
// filters, added forwarding headers and removed hop-by-hop headers (except
// Connection: Upgrade + Upgrade on upgrade requests, and "TE: trailers").
// It returns the response and the endpoint address used (for access logs),
// or an *Error. The caller must close resp.Body. For a 101 Switching
// Protocols response, resp.Body is an io.ReadWriteCloser over the upstream
// connection. Cancelling req.Context() aborts the exchange and frees the
// upstream connection, also while the body is being read.
func (u *Upstream) RoundTrip(req *http.Request) (*http.Response, string, error) {
	ep := u.bal.Pick()
	if ep == nil {
		return nil, "", &Error{Kind: NoEndpoints, Err: fmt.Errorf("upstream %q has no endpoints", u.def.Name)}
	}
	if u.h2 != nil {
		resp, err := u.roundTripH2(req, ep)
		return resp, ep.Address, err
	}
	resp, err := u.roundTripH1(req, ep)
	return resp, ep.Address, err
}

// retire closes idle connections and makes connections in use close when
// their request ends. In-flight requests are not interrupted.
func (u *Upstream) retire() {
	if u.retired.Swap(true) {
		return
	}
	for _, ep := range u.eps {
		ep.pool.closeAll()
	}
	if u.h2 != nil {
		u.h2.CloseIdleConnections()
		// Streams still running keep their conns; sweep again once they are
		// likely done (the transport's idle timeout also bounds this).
		u.h2Cleanup = time.AfterFunc(u.opts.IdleConnTimeout/2, u.h2.CloseIdleConnections)
	}
}

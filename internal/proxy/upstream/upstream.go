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
	lb        atomic.Pointer[balancer] // endpoints and balancer (swapped by DNS)
	proto     string
	stopDNS   func()
	availHook atomic.Pointer[func(*Endpoint) bool] // tests: overrides Available
	dialer    net.Dialer
	h2        *http.Transport // "h2" and "h2c"
	h2scheme  string
	retired   atomic.Bool
	h2Cleanup *time.Timer
	tlsBase   *tls.Config    // "https"/"h2": settings shared by endpoints and health checks
	to        timeouts       // timeouts.go
	brk       *breaker       // circuit breaker; nil without limits (breaker.go)
	hs        upstreamHealth // active checks and outlier detection (health.go)
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.def.Name }

// Endpoints returns the live endpoints (read-only).
func (u *Upstream) Endpoints() []*Endpoint { return u.lb.Load().eps }

// Balancer returns the upstream's balancer.
func (u *Upstream) Balancer() Balancer { return u.lb.Load() }

func newUpstream(def ir.Upstream, opts Options) (*Upstream, error) {
	u := &Upstream{def: def, opts: opts}
	u.initTimeouts()
	u.brk = newBreaker(def.CircuitBreaker)
	u.dialer = net.Dialer{Timeout: u.to.connect, KeepAlive: 30 * time.Second}
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
		u.tlsBase = base
	default:
		return nil, fmt.Errorf("upstream %q: unknown protocol %q", def.Name, def.Protocol)
	}
	u.proto = proto
	eps := make([]*Endpoint, len(def.Endpoints))
	for i, d := range def.Endpoints {
		ep, err := u.newEndpoint(d)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: endpoint %q: %w", def.Name, d.Address, err)
		}
		eps[i] = ep
	}
	if _, ok := algorithms[def.Algorithm]; !ok {
		opts.Logger.Warn("unknown load-balancing algorithm, using round-robin",
			"upstream", def.Name, "algorithm", def.Algorithm)
	}
	u.setEndpoints(eps)
	if proto == ir.UpstreamH2 || proto == ir.UpstreamH2C {
		u.h2 = u.newH2Transport(proto, base)
	}
	u.initHealth()
	return u, nil
}

// newEndpoint builds the live endpoint for d: its pool and TLS settings.
func (u *Upstream) newEndpoint(d ir.Endpoint) (*Endpoint, error) {
	host, _, err := net.SplitHostPort(d.Address)
	if err != nil {
		return nil, err
	}
	ep := &Endpoint{Address: d.Address, Weight: max(d.Weight, 1), Labels: d.Labels, up: u}
	prepareEndpoint(&u.def, ep)
	maxIdle := u.opts.MaxIdlePerEndpoint
	if u.def.MaxIdleConns > 0 {
		maxIdle = int(u.def.MaxIdleConns)
	}
	ep.pool.init(maxIdle, u.to.idle)
	if u.brk.countsConns() {
		ep.pool.notify = u.brk.signal
	}
	if u.proto == ir.UpstreamHTTPS {
		ep.tlsConf = u.tlsBase.Clone()
		if ep.tlsConf.ServerName == "" {
			ep.tlsConf.ServerName = host
		}
		ep.tlsConf.NextProtos = []string{"http/1.1"}
	}
	return ep, nil
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
	if t.ClientCertificate != "" || t.ClientKey != "" {
		cert, err := tls.X509KeyPair([]byte(t.ClientCertificate), []byte(t.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("tls.clientCertificate/clientKey: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
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
	return u.RoundTripTry(req, nil)
}

// retire closes idle connections and makes connections in use close when
// their request ends. In-flight requests are not interrupted.
func (u *Upstream) retire() {
	if u.retired.Swap(true) {
		return
	}
	u.stopHealth()
	if u.stopDNS != nil {
		u.stopDNS()
	}
	for _, ep := range u.Endpoints() {
		ep.pool.closeAll()
	}
	if u.h2 != nil {
		u.h2.CloseIdleConnections()
		// Streams still running keep their conns; sweep again once they are
		// likely done (the transport's idle timeout also bounds this).
		u.h2Cleanup = time.AfterFunc(u.opts.IdleConnTimeout/2, u.h2.CloseIdleConnections)
	}
}

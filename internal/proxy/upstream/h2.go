package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"

	"portico.dev/portico/internal/ir"
)

// newH2Transport builds the net/http transport for "h2" (TLS + ALPN h2) and
// "h2c" (prior knowledge). Requests are addressed to the picked endpoint, so
// the transport keeps one connection pool per endpoint; dialing is ours so
// that failures are classified as ConnectFailed.
func (u *Upstream) newH2Transport(proto string, base *tls.Config) *http.Transport {
	var p http.Protocols
	tr := &http.Transport{
		MaxIdleConnsPerHost:   u.opts.MaxIdlePerEndpoint,
		IdleConnTimeout:       u.to.idle,
		ResponseHeaderTimeout: u.to.header,
		HTTP2: &http.HTTP2Config{
			// Ping idle-looking conns so dead peers are noticed.
			SendPingTimeout: 15 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
	if proto == ir.UpstreamH2C {
		p.SetUnencryptedHTTP2(true)
		u.h2scheme = "http"
		tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return u.connect(ctx, addr, nil, false)
		}
	} else {
		p.SetHTTP2(true)
		u.h2scheme = "https"
		tr.DialTLSContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			cfg := base.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName, _, _ = net.SplitHostPort(addr)
			}
			cfg.NextProtos = []string{"h2"}
			nc, err := u.connect(ctx, addr, cfg, false)
			if err != nil {
				return nil, err
			}
			tc := nc.(*tls.Conn)
			if tc.ConnectionState().NegotiatedProtocol != "h2" {
				tc.Close()
				return nil, &dialError{errors.New("upstream did not negotiate h2 via ALPN")}
			}
			return tc, nil
		}
	}
	if b := u.brk; b.countsConns() {
		tr.MaxConnsPerHost = max(1, int(b.cfg.MaxConnections)/max(1, len(u.def.Endpoints)))
	}
	tr.Protocols = &p
	return tr
}

// roundTripH2 sends req through the HTTP/2 transport to ep.
func (u *Upstream) roundTripH2(req *http.Request, ep *Endpoint) (*http.Response, error) {
	out := *req // shallow copy: the caller's request is not modified
	uu := url.URL{Scheme: u.h2scheme, Host: ep.Address, Path: req.URL.Path,
		RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery, Opaque: req.URL.Opaque}
	out.URL = &uu
	out.RequestURI = ""
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	resp, err := u.h2.RoundTrip(&out)
	if err != nil {
		if herr := u.h2HeaderTimeout(req, ep.Address, err); herr != nil {
			return nil, herr
		}
		return nil, classify(req.Context(), ep.Address, err, false)
	}
	return resp, nil
}

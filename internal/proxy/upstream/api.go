// Package upstream holds the live state of upstreams in the data plane:
// endpoints, load balancers and connection pools, plus a fast HTTP/1.1 client.
//
// A Registry turns a snapshot's ir.Upstream definitions into live *Upstream
// values and keeps unchanged ones across config swaps, so keep-alive pools and
// balancer state survive reloads. HTTP/1.1 ("http", "https") goes through this
// package's own client (per-endpoint LIFO idle stacks, no goroutine per
// connection or request); HTTP/2 ("h2", "h2c") goes through net/http.
package upstream

import (
	"log/slog"
	"time"
)

// Options tune every upstream (zero values pick defaults).
type Options struct {
	DialTimeout        time.Duration // default 5s
	IdleConnTimeout    time.Duration // default 60s
	MaxIdlePerEndpoint int           // default 1024: keep-alive pool sized to concurrency
	// PendingTimeout bounds how long a request waits for a connection when an
	// upstream is at its circuit breaker's max connections (default 1s).
	PendingTimeout time.Duration
	// OnHealthChange, when set, is called (never with a lock held) each time an
	// endpoint becomes available or unavailable: healthy is Available() after the
	// change (active checks passing and not ejected by outlier detection).
	OnHealthChange func(upstream, endpoint string, healthy bool)
	Logger         *slog.Logger
	// Resolver serves DNS discovery (default: a TTL-aware DNSClient using
	// DNSServers).
	Resolver Resolver
	// DNSServers are the nameservers ("ip:port") of the default resolver;
	// empty means those of /etc/resolv.conf.
	DNSServers []string
}

func (o Options) withDefaults() Options {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = 60 * time.Second
	}
	if o.MaxIdlePerEndpoint <= 0 {
		o.MaxIdlePerEndpoint = 1024
	}
	if o.PendingTimeout <= 0 {
		o.PendingTimeout = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ErrorKind classifies a failed round trip so the handler can map it to
// 502/503/504 and decide whether a retry is safe.
type ErrorKind int

// Error kinds.
const (
	// NoEndpoints: the balancer had nothing to pick (503).
	NoEndpoints ErrorKind = iota + 1
	// ConnectFailed: dial refused/unreachable/timed out, or the TLS handshake
	// failed; the request never reached the upstream (502, always retryable).
	ConnectFailed
	// Timeout: the request context's deadline passed, the upstream's response
	// header timeout expired (errors.Is ErrResponseHeaderTimeout), or connecting
	// took longer than the connect timeout (errors.Is ErrConnectTimeout: the
	// request never reached the upstream, so retrying it is as safe as after
	// ConnectFailed) (504).
	Timeout
	// Reset: the connection closed or reset before or while reading the
	// response head, or the request context was canceled (errors.Is
	// context.Canceled then holds), or reading the request body failed (502).
	Reset
	// Protocol: the upstream sent a malformed response (502).
	Protocol
	// Overloaded: a circuit-breaker limit of the upstream was reached before
	// anything was sent; Error.Limit names it (503 with X-Portico-Overloaded).
	Overloaded
)

// String returns a short name for logs and metrics.
func (k ErrorKind) String() string {
	switch k {
	case NoEndpoints:
		return "no_endpoints"
	case ConnectFailed:
		return "connect_failed"
	case Timeout:
		return "timeout"
	case Reset:
		return "reset"
	case Protocol:
		return "protocol"
	case Overloaded:
		return "overloaded"
	}
	return "unknown"
}

// Error is a failed round trip. Endpoint is the address tried ("" when no
// endpoint was picked).
type Error struct {
	Kind     ErrorKind
	Endpoint string
	// Limit names the circuit-breaker limit for Overloaded: one of
	// LimitConnections, LimitPending, LimitRequests, LimitRetries.
	Limit string
	Err   error
}

// Error implements error.
func (e *Error) Error() string {
	s := "upstream " + e.Kind.String()
	if e.Limit != "" {
		s += " [" + e.Limit + "]"
	}
	if e.Endpoint != "" {
		s += " (" + e.Endpoint + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/proxy/upstream"
)

// statusClientClosed is logged (never sent) when the client went away before the
// response started, as nginx does.
const statusClientClosed = 499

// gatewayError is an error response the gateway itself produces. The JSON body and
// header values are rendered once, so answering an error allocates nothing.
type gatewayError struct {
	status int
	code   string
	body   []byte
	hCode  []string
	hLen   []string
}

func newGatewayError(status int, code, message string) *gatewayError {
	b := []byte(`{"error":{"code":`)
	b = observe.AppendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = observe.AppendJSONString(b, message)
	b = append(b, "}}\n"...)
	return &gatewayError{
		status: status, code: code, body: b,
		hCode: []string{code}[:1:1],
		hLen:  []string{strconv.Itoa(len(b))}[:1:1],
	}
}

// The errors the data plane answers with; X-Portico-Error carries the code.
var (
	errRouteNotFound    = newGatewayError(http.StatusNotFound, "route_not_found", "no route matches this request")
	errNoBackend        = newGatewayError(http.StatusInternalServerError, "no_valid_backend", "the route has no valid backend")
	errNoEndpoints      = newGatewayError(http.StatusServiceUnavailable, "upstream_unavailable", "the upstream has no available endpoint")
	errConnectFailed    = newGatewayError(http.StatusBadGateway, "upstream_connect_failed", "could not connect to the upstream")
	errUpstreamReset    = newGatewayError(http.StatusBadGateway, "upstream_reset", "the upstream closed the connection before responding")
	errUpstreamProto    = newGatewayError(http.StatusBadGateway, "upstream_protocol_error", "the upstream sent an invalid response")
	errUpstreamTimeout  = newGatewayError(http.StatusGatewayTimeout, "upstream_timeout", "the upstream did not respond in time")
	errUpstreamOther    = newGatewayError(http.StatusBadGateway, "upstream_error", "the upstream request failed")
	errInternal         = newGatewayError(http.StatusInternalServerError, "internal_error", "the gateway failed to handle the request")
	errMethodNotAllowed = newGatewayError(http.StatusMethodNotAllowed, "method_not_allowed", "CONNECT is not supported")
	errUpgradeFailed    = newGatewayError(http.StatusBadGateway, "upgrade_failed", "the protocol upgrade could not be completed")
	errOverloaded       = newGatewayError(http.StatusServiceUnavailable, "upstream_overloaded", "the upstream's circuit breaker rejected the request")
	errIdleTimeout      = newGatewayError(http.StatusGatewayTimeout, "idle_timeout", "no data moved within the route's idle timeout")
	errBadRequestBody   = newGatewayError(http.StatusBadRequest, "request_body_error", "the request body could not be read")
	errBodyTooLarge     = newGatewayError(http.StatusRequestEntityTooLarge, "body_too_large", "the request body exceeds the route's limit")
)

var (
	valJSON    = []string{"application/json"}[:1:1]
	valNoSniff = []string{"nosniff"}[:1:1]
)

const (
	hdrPortErr  = "X-Portico-Error"
	hdrLength   = "Content-Length"
	hdrNoSniff  = "X-Content-Type-Options"
	hdrLocation = "Location"
	// hdrOverloaded names the circuit-breaker limit that rejected a request.
	hdrOverloaded = "X-Portico-Overloaded"
)

// write sends the error. Headers set earlier on w (a request ID) are kept.
func (e *gatewayError) write(w http.ResponseWriter) int64 {
	h := w.Header()
	h[hdrContentType] = valJSON
	h[hdrNoSniff] = valNoSniff
	h[hdrPortErr] = e.hCode
	h[hdrLength] = e.hLen
	w.WriteHeader(e.status)
	n, _ := w.Write(e.body)
	return int64(n)
}

// classify maps a failed round trip to the error to answer. ctx is the request
// context given to the upstream (with the route timeout, if any).
func classify(err error, ctx context.Context) *gatewayError {
	// A body limit (the body-size plugin wraps unsized bodies with http.MaxBytesReader
	// semantics) tripped while the body was being sent upstream.
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errBodyTooLarge
	}
	var ue *upstream.Error
	if errors.As(err, &ue) {
		switch ue.Kind {
		case upstream.NoEndpoints:
			return errNoEndpoints
		case upstream.ConnectFailed:
			return errConnectFailed
		case upstream.Timeout:
			return errUpstreamTimeout
		case upstream.Reset:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return errUpstreamTimeout
			}
			return errUpstreamReset
		case upstream.Protocol:
			return errUpstreamProto
		case upstream.Overloaded:
			return errOverloaded
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errUpstreamTimeout
	}
	return errUpstreamOther
}

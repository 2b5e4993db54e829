package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"portico.dev/portico/internal/ir"
)

// PickInfo is what a balancer may look at to choose an endpoint.
type PickInfo struct {
	// Request is the HTTP request (nil for L4 connections).
	Request *http.Request
	// ClientIP is the downstream client's address, for source-IP hashing.
	ClientIP string
	// Avoid lists endpoint addresses already tried for this request; a balancer
	// picks another one when it can.
	Avoid []string
}

// Try carries one attempt's context from the handler.
type Try struct {
	PickInfo
	// Retry marks an attempt after the first (counted by the circuit breaker's max retries).
	Retry bool
}

// Result is the outcome of one attempt on an endpoint. It feeds passive health
// checking and latency-aware balancing.
type Result struct {
	Status  int       // HTTP status; 0 when there was no response
	Kind    ErrorKind // 0 on success
	Latency time.Duration
}

// Config returns the definition the upstream was built from (read-only).
func (u *Upstream) Config() *ir.Upstream { return &u.def }

// RoundTripTry is RoundTrip for one attempt of a request that may be retried: t
// (may be nil) says which endpoints to avoid and whether this is a retry.
func (u *Upstream) RoundTripTry(req *http.Request, t *Try) (*http.Response, string, error) {
	info := &PickInfo{Request: req}
	if t != nil {
		info = &t.PickInfo
		if info.Request == nil {
			info.Request = req
		}
	}
	retry := t != nil && t.Retry
	if u.brk.tracksRequests() {
		if err := u.brk.enter(retry, u.def.Name); err != nil {
			return nil, "", err
		}
	}
	ep := u.Pick(info)
	if ep == nil {
		if u.brk.tracksRequests() {
			u.brk.leave(retry)
		}
		return nil, "", &Error{Kind: NoEndpoints, Err: fmt.Errorf("upstream %q has no endpoints", u.def.Name)}
	}
	ep.begin()
	start := time.Now()
	var resp *http.Response
	var err error
	if u.h2 != nil {
		resp, err = u.roundTripH2(req, ep)
	} else {
		resp, err = u.roundTripH1(req, ep)
	}
	res := Result{Latency: time.Since(start)}
	ep.end()
	if err != nil {
		if ue, ok := err.(*Error); ok {
			res.Kind = ue.Kind
			if ue.Endpoint == "" {
				ue.Endpoint = ep.Address
			}
		}
	} else {
		res.Status = resp.StatusCode
		u.setAffinityCookie(req, resp, ep)
	}
	if u.brk.tracksRequests() {
		if err != nil {
			u.brk.leave(retry)
		} else {
			u.brk.release(resp, retry)
		}
	}
	// A client that went away says nothing about the endpoint.
	if !errors.Is(err, context.Canceled) {
		ep.Report(res)
	}
	return resp, ep.Address, err
}

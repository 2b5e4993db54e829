// Package proxy is the HTTP data plane: it compiles IR snapshots into immutable
// per-listener state, swaps that state in atomically, and serves HTTP/1.1, HTTP/2
// (over TLS and h2c prior knowledge), gRPC and WebSocket traffic through it.
//
// # Swaps
//
// Every listener socket ("address:port", one per ir.Listener name) is long-lived:
// it survives swaps while the snapshot keeps a listener of that name, and its
// handler loads the compiled state from an atomic pointer once per request. A swap
// is a pointer store per listener; it never waits for requests, and a request in
// flight finishes with the state it started with. Apply is all-or-nothing: it
// validates, builds upstreams, parses certificates, compiles every listener and
// binds new sockets before it changes anything. Removed listeners stop accepting at
// once and drain in the background for at most Options.DrainTimeout.
//
// # HTTP and HTTPS on one port
//
// A listener decides per accepted connection, from the state in force, whether to
// terminate TLS; a swap can turn a port from HTTP to HTTPS (or back) without
// rebinding, and open connections keep the protocol they started with. The
// certificate is chosen by SNI among the listener's certificates (exact host, then
// the longest wildcard, else the first certificate as default), with TLS 1.2+ and
// ALPN h2, http/1.1. Plaintext listeners serve HTTP/1.1 and h2c prior knowledge.
//
// # Requests
//
// Decisions a user can observe:
//
//   - The path is cleaned (dot segments, repeated slashes) before routing, so
//     "/public/../admin" is routed, and forwarded, as "/admin".
//   - The client's Host header is sent upstream unchanged unless a rewrite sets a
//     hostname, as Envoy and Traefik do, so virtual-hosted backends keep working;
//     X-Forwarded-Host carries the original host in every case.
//   - X-Forwarded-For gets the client IP appended to what the client sent (the
//     first gateway of a chain should strip it at the edge if it is untrusted);
//     X-Forwarded-Proto and X-Forwarded-Host are always set by the gateway, never
//     trusted from the client; an RFC 7239 Forwarded element is appended.
//   - Hop-by-hop fields (RFC 9110 §7.6.1) are removed in both directions; "TE:
//     trailers" is kept for gRPC.
//   - X-Request-Id is propagated, or generated (process prefix + counter) and
//     returned to the client.
//   - Gateway errors are JSON {"error":{"code","message"}} with X-Portico-Error:
//     route_not_found 404, no_valid_backend 500, upstream_unavailable 503,
//     upstream_connect_failed / upstream_reset / upstream_protocol_error 502,
//     upstream_timeout 504, upstream_overloaded 503, idle_timeout 504,
//     request_body_error 400, fault_injected (the configured status),
//     internal_error 500 (a recovered panic). A client that
//     leaves before the response starts gets nothing and is logged as 499.
//   - The route timeout bounds ordinary requests; upgraded (WebSocket) sessions are
//     not subject to it. Upgrades are HTTP/1.1 only (no RFC 8441 extended CONNECT).
//   - Routes may retry (with a per-upstream retry budget on by default), mirror a
//     share of requests to another upstream, inject faults and bound idle time;
//     see retry.go, budget.go, mirror.go, fault.go and idle.go, and the traffic
//     policy decisions in docs/architecture.md. A circuit-breaker rejection is a
//     503 upstream_overloaded with X-Portico-Overloaded naming the limit.
//   - Responses of unknown length, gRPC and server-sent events are flushed as they
//     arrive; trailers are relayed; a gRPC "Trailers-Only" status is relayed as
//     trailers so HTTP/2 clients see it.
//
// The incoming *http.Request is edited in place and handed to the upstream client
// (its header map, URL and Host belong to the handler), which keeps the request
// path free of clones.
package proxy

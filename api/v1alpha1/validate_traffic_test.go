package v1alpha1

import (
	"math"
	"testing"
)

func TestUpstreamTrafficValidate(t *testing.T) {
	cert, key := selfSigned(t, "portico.internal")
	_, otherKey := selfSigned(t, "other.internal")
	eps := []Endpoint{{Address: "10.0.0.1:80", Labels: map[string]string{"zone": "a"}}}
	check(t, "valid", upstream(UpstreamSpec{
		Endpoints: eps,
		Protocol:  UpstreamHTTPS,
		LoadBalancer: &LoadBalancer{Algorithm: LBConsistentHash, HashOn: &HashOn{Cookie: "session"}, SlowStart: "30s",
			SessionAffinity: &SessionAffinity{Cookie: "pin", TTL: "1h"}, Locality: &Locality{Zone: "a", MinHealthyPercent: ptr(int32(50))}},
		HealthCheck: &HealthCheck{
			Active:  &ActiveHealthCheck{GRPC: &GRPCHealthCheck{Service: "x"}, Timeout: "500ms", Jitter: "0s", HealthyThreshold: 1},
			Passive: &PassiveHealthCheck{Consecutive5xx: 3, EjectionTime: "10s", MaxEjectionTime: "10s", MaxEjectedPercent: ptr(int32(100))},
		},
		TLS:            &UpstreamTLS{ClientCertificate: cert, ClientKey: key},
		CircuitBreaker: &CircuitBreaker{MaxConnections: 10},
		Timeouts:       &UpstreamTimeouts{Connect: "1s", Idle: "1m", ResponseHeader: "5s"},
		RetryBudget:    &RetryBudget{Percent: ptr(int32(0)), MinRetriesPerSecond: ptr(int32(0)), Interval: "1s"},
		ProxyProtocol:  "v2",
	}).Validate())
	check(t, "dns srv", upstream(UpstreamSpec{DNS: &DNSDiscovery{Name: "_http._tcp.svc.local", SRV: true, Refresh: "5s"}}).Validate())
	check(t, "dns a", upstream(UpstreamSpec{DNS: &DNSDiscovery{Name: "svc.local", Port: 80}}).Validate())

	check(t, "invalid", upstream(UpstreamSpec{
		Endpoints: eps,
		DNS:       &DNSDiscovery{Name: "svc:80", SRV: true, Port: 80, Refresh: "0s"},
		LoadBalancer: &LoadBalancer{Algorithm: LBRoundRobin, HashOn: &HashOn{Header: "a b", SourceIP: true}, SlowStart: "-1s",
			SessionAffinity: &SessionAffinity{Cookie: "a;b"}, Locality: &Locality{MinHealthyPercent: ptr(int32(101))}},
		HealthCheck: &HealthCheck{
			Active: &ActiveHealthCheck{HTTP: &HTTPHealthCheck{Path: "/h", ExpectedStatuses: []int32{200, 600}}, TCP: &TCPHealthCheck{},
				Timeout: "0s", Jitter: "x", HealthyThreshold: -1, UnhealthyThreshold: -2},
			Passive: &PassiveHealthCheck{Consecutive5xx: -1, ConsecutiveTimeouts: -1, EjectionTime: "1m", MaxEjectionTime: "30s",
				MaxEjectedPercent: ptr(int32(-1))},
		},
		TLS:            &UpstreamTLS{ClientCertificate: cert, ClientKey: otherKey},
		CircuitBreaker: &CircuitBreaker{MaxPendingRequests: -1, MaxRequests: -1, MaxRetries: -1},
		Timeouts:       &UpstreamTimeouts{Connect: "0s", Idle: "x", ResponseHeader: "-1s"},
		RetryBudget:    &RetryBudget{Percent: ptr(int32(101)), MinRetriesPerSecond: ptr(int32(-1)), Interval: "0s"},
		ProxyProtocol:  "v3",
	}).Validate(),
		"spec.dns", "spec.dns.name", "spec.dns.port", "spec.dns.refresh",
		"spec.loadBalancer.hashOn", "spec.loadBalancer.hashOn", "spec.loadBalancer.hashOn.header", "spec.loadBalancer.slowStart",
		"spec.loadBalancer.sessionAffinity.cookie", "spec.loadBalancer.locality.zone", "spec.loadBalancer.locality.minHealthyPercent",
		"spec.healthCheck.active", "spec.healthCheck.active.http.expectedStatuses[1]", "spec.healthCheck.active.timeout",
		"spec.healthCheck.active.jitter", "spec.healthCheck.active.healthyThreshold", "spec.healthCheck.active.unhealthyThreshold",
		"spec.healthCheck.passive.consecutive5xx", "spec.healthCheck.passive.consecutiveTimeouts",
		"spec.healthCheck.passive.maxEjectionTime", "spec.healthCheck.passive.maxEjectedPercent",
		"spec.tls", "spec.tls.clientCertificate",
		"spec.circuitBreaker.maxPendingRequests", "spec.circuitBreaker.maxRequests", "spec.circuitBreaker.maxRetries",
		"spec.timeouts.connect", "spec.timeouts.idle", "spec.timeouts.responseHeader",
		"spec.retryBudget.percent", "spec.retryBudget.minRetriesPerSecond", "spec.retryBudget.interval", "spec.proxyProtocol")

	check(t, "consistent-hash without hashOn", upstream(UpstreamSpec{Endpoints: eps,
		LoadBalancer: &LoadBalancer{Algorithm: LBConsistentHash}}).Validate(), "spec.loadBalancer.hashOn")
	check(t, "dns without port", upstream(UpstreamSpec{DNS: &DNSDiscovery{}}).Validate(), "spec.dns.name", "spec.dns.port")
	check(t, "key without cert", upstream(UpstreamSpec{Endpoints: eps, Protocol: UpstreamH2,
		TLS: &UpstreamTLS{ClientKey: key}}).Validate(), "spec.tls.clientCertificate")
	check(t, "cert without key", upstream(UpstreamSpec{Endpoints: eps, Protocol: UpstreamH2,
		TLS: &UpstreamTLS{ClientCertificate: cert}}).Validate(), "spec.tls.clientKey")
}

func TestRouteTrafficValidate(t *testing.T) {
	check(t, "valid", route(RouteSpec{
		Timeouts: &RouteTimeouts{Request: "15s", Idle: "1m"},
		Retry: &RouteRetry{Attempts: 10, On: []string{"5xx", "retriable-status-codes", "reset"}, StatusCodes: []int32{409},
			Backoff: &RetryBackoff{Base: "10ms", Max: "10ms"}, NonIdempotent: true},
		Mirror: &Mirror{Upstream: "shadow", Percent: ptrTo(12.5)},
		Fault:  &Fault{Delay: &FaultDelay{Duration: "100ms", Percent: 0}, Abort: &FaultAbort{Status: 503, Percent: 100}},
	}).Validate())
	check(t, "invalid", route(RouteSpec{
		Timeouts: &RouteTimeouts{Idle: "0s"},
		Retry: &RouteRetry{Attempts: 11, On: []string{"timeout", "reset", "reset"}, StatusCodes: []int32{99},
			Backoff: &RetryBackoff{Base: "1s", Max: "100ms"}},
		Mirror: &Mirror{Percent: ptrTo(101.0)},
		Fault:  &Fault{Delay: &FaultDelay{Percent: math.NaN()}, Abort: &FaultAbort{Status: 199, Percent: -1}},
	}).Validate(),
		"spec.timeouts.idle", "spec.retry.attempts", "spec.retry.on[0]", "spec.retry.on[2]", "spec.retry.statusCodes",
		"spec.retry.statusCodes[0]", "spec.retry.backoff.max", "spec.mirror.upstream", "spec.mirror.percent",
		"spec.fault.delay.duration", "spec.fault.delay.percent", "spec.fault.abort.status", "spec.fault.abort.percent")
	check(t, "codes required", route(RouteSpec{Retry: &RouteRetry{Attempts: 1, On: []string{"retriable-status-codes"}}}).Validate(),
		"spec.retry.statusCodes")
	check(t, "empty fault", route(RouteSpec{Fault: &Fault{}}).Validate(), "spec.fault")
}

func TestListenerProxyProtocolValidate(t *testing.T) {
	pp := func(cidrs ...string) *ProxyProtocolAccept { return &ProxyProtocolAccept{TrustedCIDRs: cidrs} }
	check(t, "valid", gateway(
		Listener{Name: "tcp", Port: 5432, Protocol: ProtocolTCP, ProxyProtocol: pp("10.0.0.0/8", "192.168.1.7", "fd00::/8")},
		Listener{Name: "http", Port: 80, Protocol: ProtocolHTTP, ProxyProtocol: pp("::1")},
	).Validate())
	check(t, "invalid", gateway(
		Listener{Name: "tcp", Port: 5432, Protocol: ProtocolTCP, ProxyProtocol: pp("10.0.0.0/33", "host", "fe80::1%eth0")},
		Listener{Name: "udp", Port: 53, Protocol: ProtocolUDP, ProxyProtocol: pp()},
	).Validate(),
		"spec.listeners[0].proxyProtocol.trustedCIDRs[0]", "spec.listeners[0].proxyProtocol.trustedCIDRs[1]",
		"spec.listeners[0].proxyProtocol.trustedCIDRs[2]", "spec.listeners[1].proxyProtocol",
		"spec.listeners[1].proxyProtocol.trustedCIDRs")
	if p, ok := ParseTrustedSource("10.1.2.3/8"); !ok || p.String() != "10.0.0.0/8" {
		t.Fatalf("ParseTrustedSource: %v %v", p, ok)
	}
	if p, ok := ParseTrustedSource("::1"); !ok || p.String() != "::1/128" {
		t.Fatalf("ParseTrustedSource: %v %v", p, ok)
	}
}

func TestStreamRouteIdleTimeoutValidate(t *testing.T) {
	m := meta
	m.Kind = KindStreamRoute
	sr := &StreamRoute{TypeMeta: m, Metadata: ObjectMeta{Name: "dns"},
		Spec: StreamRouteSpec{Listener: "udp", Backends: []Backend{{Upstream: "dns"}}, IdleTimeout: "0s"}}
	check(t, "zero idle", sr.Validate(), "spec.idleTimeout")
}

func ptrTo[T any](v T) *T { return &v }

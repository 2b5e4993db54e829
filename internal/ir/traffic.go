package ir

// Traffic-management parts of the IR. Durations are milliseconds; zero means "not set"
// (the data plane applies its documented default).

// UpstreamTraffic is everything about how requests reach an upstream's endpoints
// beyond the endpoint list itself. It is embedded in Upstream.
type UpstreamTraffic struct {
	// DNS, when set, replaces Endpoints with addresses resolved at run time.
	DNS *DNSDiscovery `json:"dns,omitempty"`
	// Hash is the key for the consistent-hash algorithm.
	Hash *HashPolicy `json:"hash,omitempty"`
	// SlowStartMillis ramps a new (or newly healthy) endpoint's share up over this window.
	SlowStartMillis int64 `json:"slowStartMillis,omitempty"`
	// Affinity pins a client to an endpoint with a cookie.
	Affinity *Affinity `json:"affinity,omitempty"`
	// Locality prefers endpoints whose "zone" label equals Zone, failing over to others
	// when too few local ones are healthy.
	Locality *Locality `json:"locality,omitempty"`

	HealthCheck    *HealthCheck     `json:"healthCheck,omitempty"`
	CircuitBreaker *CircuitBreaker  `json:"circuitBreaker,omitempty"`
	Timeouts       UpstreamTimeouts `json:"timeouts,omitzero"`
	// RetryBudget bounds retries to this upstream; always present after translation
	// (a default budget applies when the user sets none).
	RetryBudget RetryBudget `json:"retryBudget"`
	// ProxyProtocol sends a PROXY protocol header ("v1" or "v2") on each new connection.
	ProxyProtocol string `json:"proxyProtocol,omitempty"`
	// MaxIdleConns per endpoint (0: the data plane default).
	MaxIdleConns int32 `json:"maxIdleConns,omitempty"`
}

// DNSDiscovery resolves endpoints by name.
type DNSDiscovery struct {
	// Name is resolved as A/AAAA (with Port), or as SRV when SRV is true (ports from the records).
	Name string `json:"name"`
	Port int32  `json:"port,omitempty"`
	SRV  bool   `json:"srv,omitempty"`
	// RefreshMillis caps how long a result is used (the record TTL is honoured when the
	// resolver reports it); default 30 s.
	RefreshMillis int64 `json:"refreshMillis,omitempty"`
}

// HashPolicy says what a consistent-hash balancer hashes. Exactly one is set.
type HashPolicy struct {
	Header   string `json:"header,omitempty"`
	Cookie   string `json:"cookie,omitempty"`
	SourceIP bool   `json:"sourceIP,omitempty"`
	Path     bool   `json:"path,omitempty"`
}

// Affinity is cookie-based session affinity.
type Affinity struct {
	Cookie    string `json:"cookie"`
	TTLMillis int64  `json:"ttlMillis,omitempty"`
}

// Locality is zone preference.
type Locality struct {
	Zone string `json:"zone"`
	// MinHealthyPercent of local endpoints below which traffic spills to other zones (default 70).
	MinHealthyPercent int32 `json:"minHealthyPercent,omitempty"`
}

// HealthCheck holds active and passive checks.
type HealthCheck struct {
	Active  *ActiveCheck  `json:"active,omitempty"`
	Passive *PassiveCheck `json:"passive,omitempty"`
}

// Active check kinds.
const (
	CheckHTTP = "http"
	CheckTCP  = "tcp"
	CheckGRPC = "grpc"
)

// ActiveCheck probes each endpoint on an interval.
type ActiveCheck struct {
	Type string `json:"type"` // http, tcp or grpc
	// Path and ExpectedStatuses apply to http (default: 200-399 is healthy).
	Path             string  `json:"path,omitempty"`
	Host             string  `json:"host,omitempty"`
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
	// GRPCService is the service name for the gRPC health protocol ("" = the server).
	GRPCService        string `json:"grpcService,omitempty"`
	IntervalMillis     int64  `json:"intervalMillis"`
	TimeoutMillis      int64  `json:"timeoutMillis"`
	HealthyThreshold   int32  `json:"healthyThreshold"`
	UnhealthyThreshold int32  `json:"unhealthyThreshold"`
	// JitterMillis adds a random 0..Jitter to each interval so probes do not align.
	JitterMillis int64 `json:"jitterMillis,omitempty"`
}

// PassiveCheck is outlier detection on real traffic.
type PassiveCheck struct {
	// Consecutive5xx ejects after this many 5xx responses in a row (0: off).
	Consecutive5xx int32 `json:"consecutive5xx,omitempty"`
	// ConsecutiveGatewayErrors counts 502/503/504 and connect failures (0: off).
	ConsecutiveGatewayErrors int32 `json:"consecutiveGatewayErrors,omitempty"`
	// ConsecutiveTimeouts counts timeouts (0: off).
	ConsecutiveTimeouts int32 `json:"consecutiveTimeouts,omitempty"`
	// BaseEjectionMillis is multiplied by the number of times the endpoint was ejected.
	BaseEjectionMillis int64 `json:"baseEjectionMillis"`
	MaxEjectionMillis  int64 `json:"maxEjectionMillis"`
	// MaxEjectedPercent of endpoints that may be ejected at once.
	MaxEjectedPercent int32 `json:"maxEjectedPercent"`
}

// CircuitBreaker caps concurrency per upstream; 0 means no limit.
type CircuitBreaker struct {
	MaxConnections     int32 `json:"maxConnections,omitempty"`
	MaxPendingRequests int32 `json:"maxPendingRequests,omitempty"`
	MaxRequests        int32 `json:"maxRequests,omitempty"`
	MaxRetries         int32 `json:"maxRetries,omitempty"`
}

// UpstreamTimeouts bound connection set-up and waiting on an endpoint.
type UpstreamTimeouts struct {
	ConnectMillis        int64 `json:"connectMillis,omitempty"`
	IdleMillis           int64 `json:"idleMillis,omitempty"`
	ResponseHeaderMillis int64 `json:"responseHeaderMillis,omitempty"`
}

// RetryBudget follows Gateway API GEP-3388: retries may add at most Percent of the
// active requests, plus MinRetriesPerSecond, over a sliding IntervalMillis.
type RetryBudget struct {
	Percent             int32 `json:"percent"`
	MinRetriesPerSecond int32 `json:"minRetriesPerSecond"`
	IntervalMillis      int64 `json:"intervalMillis"`
}

// Retry is a route's retry policy.
type Retry struct {
	Attempts int32 `json:"attempts"` // retries after the first try
	// On lists conditions: connect-failure, reset, gateway-error (502/503/504),
	// retriable-status-codes (StatusCodes), 5xx.
	On                  []string `json:"on"`
	StatusCodes         []int32  `json:"statusCodes,omitempty"`
	PerTryTimeoutMillis int64    `json:"perTryTimeoutMillis,omitempty"`
	BackoffBaseMillis   int64    `json:"backoffBaseMillis"`
	BackoffMaxMillis    int64    `json:"backoffMaxMillis"`
	// NonIdempotent allows retrying POST, PATCH and other non-idempotent methods.
	NonIdempotent bool `json:"nonIdempotent,omitempty"`
}

// Mirror copies a share of requests to another upstream; its answers are discarded.
type Mirror struct {
	Upstream string  `json:"upstream"`
	Percent  float64 `json:"percent"`
}

// Fault injects delays and aborts into a share of requests.
type Fault struct {
	DelayMillis  int64   `json:"delayMillis,omitempty"`
	DelayPercent float64 `json:"delayPercent,omitempty"`
	AbortStatus  int32   `json:"abortStatus,omitempty"`
	AbortPercent float64 `json:"abortPercent,omitempty"`
}

// ProxyProtocolAccept makes an L4 or HTTP listener read a PROXY protocol header from
// connections whose source is in TrustedCIDRs: those must send one. Other sources are
// served as direct clients, and refused if they try to send a header (a forged address).
type ProxyProtocolAccept struct {
	TrustedCIDRs []string `json:"trustedCIDRs"`
}

package v1alpha1

// Upstream is a set of endpoints requests are balanced across.
type Upstream struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta   `json:"metadata"`
	Spec     UpstreamSpec `json:"spec"`
	Status   Status       `json:"status,omitempty"`
}

// Upstream protocols: how Portico speaks to the endpoints.
const (
	UpstreamHTTP  = "http"  // HTTP/1.1 over TCP (default)
	UpstreamH2C   = "h2c"   // HTTP/2 with prior knowledge over TCP (gRPC)
	UpstreamHTTPS = "https" // HTTP/1.1 over TLS
	UpstreamH2    = "h2"    // HTTP/2 over TLS
)

// Load-balancing algorithms.
const (
	LBRoundRobin     = "round-robin"
	LBRandom         = "random"
	LBLeastRequest   = "least-request"
	LBConsistentHash = "consistent-hash"
	LBEWMA           = "ewma"
)

// UpstreamSpec lists endpoints and how to reach them.
type UpstreamSpec struct {
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// DNS discovers endpoints by name instead of listing them (exclusive with endpoints).
	DNS            *DNSDiscovery     `json:"dns,omitempty"`
	Protocol       string            `json:"protocol,omitempty"`
	LoadBalancer   *LoadBalancer     `json:"loadBalancer,omitempty"`
	HealthCheck    *HealthCheck      `json:"healthCheck,omitempty"`
	TLS            *UpstreamTLS      `json:"tls,omitempty"`
	CircuitBreaker *CircuitBreaker   `json:"circuitBreaker,omitempty"`
	Timeouts       *UpstreamTimeouts `json:"timeouts,omitempty"`
	// RetryBudget bounds retries to this upstream; a default applies when unset.
	RetryBudget *RetryBudget `json:"retryBudget,omitempty"`
	// ProxyProtocol sends a PROXY protocol header ("v1" or "v2") to the endpoints.
	ProxyProtocol string `json:"proxyProtocol,omitempty"`
	// Plugins run on every route whose backends use this upstream.
	Plugins []PluginRef `json:"plugins,omitempty"`
}

// Endpoint is one host:port with a relative weight (nil means 1).
type Endpoint struct {
	Address string            `json:"address"`
	Weight  *int32            `json:"weight,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// LoadBalancer picks the algorithm.
type LoadBalancer struct {
	Algorithm string `json:"algorithm,omitempty"`
	// HashOn is the key for consistent-hash (exactly one field set).
	HashOn *HashOn `json:"hashOn,omitempty"`
	// SlowStart ramps a new endpoint's share up over this duration ("30s").
	SlowStart string `json:"slowStart,omitempty"`
	// SessionAffinity pins a client to an endpoint with a cookie.
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
	// Locality prefers endpoints labelled with the same zone.
	Locality *Locality `json:"locality,omitempty"`
}

// HealthCheck configures active and passive checks (the traffic-management work implements them).
type HealthCheck struct {
	Active  *ActiveHealthCheck  `json:"active,omitempty"`
	Passive *PassiveHealthCheck `json:"passive,omitempty"`
}

// ActiveHealthCheck probes endpoints on an interval.
type ActiveHealthCheck struct {
	// Exactly one of http, tcp, grpc.
	HTTP               *HTTPHealthCheck `json:"http,omitempty"`
	TCP                *TCPHealthCheck  `json:"tcp,omitempty"`
	GRPC               *GRPCHealthCheck `json:"grpc,omitempty"`
	Interval           string           `json:"interval,omitempty"` // default 5s
	Timeout            string           `json:"timeout,omitempty"`  // default 1s
	HealthyThreshold   int32            `json:"healthyThreshold,omitempty"`
	UnhealthyThreshold int32            `json:"unhealthyThreshold,omitempty"`
	Jitter             string           `json:"jitter,omitempty"`
}

// HTTPHealthCheck probes a path; expectedStatuses default to 200-399.
type HTTPHealthCheck struct {
	Path             string  `json:"path"`
	Host             string  `json:"host,omitempty"`
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// TCPHealthCheck only connects.
type TCPHealthCheck struct{}

// GRPCHealthCheck speaks grpc.health.v1.Health/Check.
type GRPCHealthCheck struct {
	Service string `json:"service,omitempty"`
}

// PassiveHealthCheck ejects endpoints that fail real requests (outlier detection).
type PassiveHealthCheck struct {
	// ConsecutiveFailures counts gateway errors (502/503/504, connect failures).
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
	Consecutive5xx      int32 `json:"consecutive5xx,omitempty"`
	ConsecutiveTimeouts int32 `json:"consecutiveTimeouts,omitempty"`
	// EjectionTime is the base ejection, multiplied by the number of ejections so far.
	EjectionTime      string `json:"ejectionTime,omitempty"`
	MaxEjectionTime   string `json:"maxEjectionTime,omitempty"`
	MaxEjectedPercent *int32 `json:"maxEjectedPercent,omitempty"`
}

// UpstreamTLS configures TLS towards the endpoints.
type UpstreamTLS struct {
	// SNI sent to the endpoints; defaults to the endpoint's host.
	SNI string `json:"sni,omitempty"`
	// CACertificate is a PEM bundle to verify endpoints with; empty uses the system roots.
	CACertificate string `json:"caCertificate,omitempty"`
	// InsecureSkipVerify disables verification (tests and development only).
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// ClientCertificate and ClientKey (PEM) present Portico's identity (mTLS).
	ClientCertificate string `json:"clientCertificate,omitempty"`
	ClientKey         string `json:"clientKey,omitempty"`
}

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
	Endpoints    []Endpoint    `json:"endpoints"`
	Protocol     string        `json:"protocol,omitempty"`
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`
	HealthCheck  *HealthCheck  `json:"healthCheck,omitempty"`
	TLS          *UpstreamTLS  `json:"tls,omitempty"`
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
}

// HealthCheck configures active and passive checks (the traffic-management work implements them).
type HealthCheck struct {
	Active  *ActiveHealthCheck  `json:"active,omitempty"`
	Passive *PassiveHealthCheck `json:"passive,omitempty"`
}

// ActiveHealthCheck probes endpoints on an interval.
type ActiveHealthCheck struct {
	HTTP     *HTTPHealthCheck `json:"http,omitempty"`
	Interval string           `json:"interval,omitempty"`
}

// HTTPHealthCheck probes a path.
type HTTPHealthCheck struct {
	Path string `json:"path"`
}

// PassiveHealthCheck ejects endpoints that fail real requests.
type PassiveHealthCheck struct {
	ConsecutiveFailures int32  `json:"consecutiveFailures,omitempty"`
	EjectionTime        string `json:"ejectionTime,omitempty"`
}

// UpstreamTLS configures TLS towards the endpoints.
type UpstreamTLS struct {
	// SNI sent to the endpoints; defaults to the endpoint's host.
	SNI string `json:"sni,omitempty"`
	// CACertificate is a PEM bundle to verify endpoints with; empty uses the system roots.
	CACertificate string `json:"caCertificate,omitempty"`
	// InsecureSkipVerify disables verification (tests and development only).
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

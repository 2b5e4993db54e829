package v1alpha1

// DNSDiscovery resolves an upstream's endpoints by name: A/AAAA records with port, or
// SRV records (which carry ports and weights).
type DNSDiscovery struct {
	Name string `json:"name"`
	Port int32  `json:"port,omitempty"`
	SRV  bool   `json:"srv,omitempty"`
	// Refresh caps how long an answer is used ("30s" by default; the TTL is honoured when known).
	Refresh string `json:"refresh,omitempty"`
}

// HashOn names the consistent-hash key: one of header, cookie, sourceIP, path.
type HashOn struct {
	Header   string `json:"header,omitempty"`
	Cookie   string `json:"cookie,omitempty"`
	SourceIP bool   `json:"sourceIP,omitempty"`
	Path     bool   `json:"path,omitempty"`
}

// SessionAffinity pins a client to the endpoint that served it first.
type SessionAffinity struct {
	Cookie string `json:"cookie"`        // cookie name
	TTL    string `json:"ttl,omitempty"` // cookie lifetime; empty: a session cookie
}

// Locality prefers the local zone and fails over to the others.
type Locality struct {
	Zone string `json:"zone"`
	// MinHealthyPercent of local endpoints below which traffic spills over (default 70).
	MinHealthyPercent *int32 `json:"minHealthyPercent,omitempty"`
}

// CircuitBreaker caps concurrency towards an upstream; rejected requests get 503 with
// the header X-Portico-Overloaded naming the limit.
type CircuitBreaker struct {
	MaxConnections     int32 `json:"maxConnections,omitempty"`
	MaxPendingRequests int32 `json:"maxPendingRequests,omitempty"`
	MaxRequests        int32 `json:"maxRequests,omitempty"`
	MaxRetries         int32 `json:"maxRetries,omitempty"`
}

// UpstreamTimeouts bound connecting, idling and waiting for the response head.
type UpstreamTimeouts struct {
	Connect        string `json:"connect,omitempty"`        // default 5s
	Idle           string `json:"idle,omitempty"`           // idle pooled connections, default 60s
	ResponseHeader string `json:"responseHeader,omitempty"` // none by default
}

// RetryBudget (Gateway API GEP-3388): retries may add at most percent of the active
// requests plus minRetriesPerSecond, measured over interval.
type RetryBudget struct {
	Percent             *int32 `json:"percent,omitempty"`             // default 20
	MinRetriesPerSecond *int32 `json:"minRetriesPerSecond,omitempty"` // default 3
	Interval            string `json:"interval,omitempty"`            // default 10s
}

// Mirror copies percent of requests to an upstream; the copies' answers are discarded
// and never affect the client's response.
type Mirror struct {
	Upstream string   `json:"upstream"`
	Percent  *float64 `json:"percent,omitempty"` // default 100; 0 mirrors nothing
}

// Fault injects a delay and/or an abort into a share of requests.
type Fault struct {
	Delay *FaultDelay `json:"delay,omitempty"`
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay delays percent of requests by duration.
type FaultDelay struct {
	Duration string  `json:"duration"`
	Percent  float64 `json:"percent"`
}

// FaultAbort answers percent of requests with status, without reaching the upstream.
type FaultAbort struct {
	Status  int32   `json:"status"`
	Percent float64 `json:"percent"`
}

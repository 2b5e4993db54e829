// Package ir is the intermediate representation: a validated, serialisable snapshot of
// everything a data plane needs, already sorted and resolved by translation. The data
// plane compiles it without looking back at resources, and the snapshot is what the
// control plane will ship to remote data planes.
package ir

// Snapshot is one complete data-plane configuration.
type Snapshot struct {
	// Version identifies the content: equal content gives an equal version.
	Version      string        `json:"version"`
	Listeners    []Listener    `json:"listeners,omitempty"`
	Upstreams    []Upstream    `json:"upstreams,omitempty"`
	Certificates []Certificate `json:"certificates,omitempty"`
	StreamRoutes []StreamRoute `json:"streamRoutes,omitempty"`
	// Consumers are the API clients authentication plugins know.
	Consumers []Consumer `json:"consumers,omitempty"`
}

// Protocol of a listener.
type Protocol string

// Listener protocols the IR knows.
const (
	HTTP  Protocol = "HTTP"
	HTTPS Protocol = "HTTPS"
	TCP   Protocol = "TCP"
	TLS   Protocol = "TLS"
	UDP   Protocol = "UDP"
)

// Listener is one bound socket (address:port). Several Gateway listeners on the same
// port with the same protocol merge into one; their routes are merged by host.
type Listener struct {
	// Name is "address:port" (address empty for all addresses), unique in a snapshot.
	Name     string   `json:"name"`
	Address  string   `json:"address,omitempty"`
	Port     int32    `json:"port"`
	Protocol Protocol `json:"protocol"`
	// Gateways are the "gateway/listener" names that contribute to this socket.
	Gateways []string `json:"gateways"`
	// ProxyProtocol, when set, reads a PROXY protocol header from trusted sources.
	ProxyProtocol *ProxyProtocolAccept `json:"proxyProtocol,omitempty"`
	// Certificates (names into Snapshot.Certificates) for HTTPS/TLS, the default first.
	Certificates []string `json:"certificates,omitempty"`
	// VirtualHosts in match order: exact hosts, then wildcards (longest suffix first),
	// then the catch-all "*" last.
	VirtualHosts []VirtualHost `json:"virtualHosts,omitempty"`
}

// VirtualHost groups the routes serving one hostname pattern.
type VirtualHost struct {
	// Hostname is an exact lower-case name, "*.suffix", or "*" for any host.
	Hostname string `json:"hostname"`
	// Routes in precedence order: the first that matches wins.
	Routes []Route `json:"routes"`
}

// Route is one match of one route object, with everything it does.
type Route struct {
	// Name is "namespace/name" of the source object ("name" without a namespace).
	Name string `json:"name"`
	// Gateway is the "gateway/listener" this entry came from, for logs and metrics.
	Gateway string `json:"gateway"`
	// MatchIndex is the position of the match in the source object.
	MatchIndex int `json:"matchIndex"`

	Path        PathMatch    `json:"path"`
	Method      string       `json:"method,omitempty"`
	Headers     []ValueMatch `json:"headers,omitempty"`
	QueryParams []ValueMatch `json:"queryParams,omitempty"`

	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
	Rewrite         *Rewrite        `json:"rewrite,omitempty"`
	Redirect        *Redirect       `json:"redirect,omitempty"`

	// Backends with their weights; weights of zero are dropped. Empty with no Redirect
	// means the route is broken (all backends invalid): the data plane answers 500.
	Backends []Backend `json:"backends,omitempty"`
	// TimeoutMillis bounds the whole request; 0 means no limit.
	TimeoutMillis int64 `json:"timeoutMillis,omitempty"`
	// IdleTimeoutMillis bounds the silence between body bytes in either direction.
	IdleTimeoutMillis int64  `json:"idleTimeoutMillis,omitempty"`
	Retry             *Retry `json:"retry,omitempty"`
	// Plugins run on this route: global, gateway, upstream and route attachments merged
	// (the most specific wins per name) and sorted in the one plugin order.
	Plugins []PluginSpec `json:"plugins,omitempty"`
	Mirror  *Mirror      `json:"mirror,omitempty"`
	Fault   *Fault       `json:"fault,omitempty"`
}

// Match types.
const (
	MatchExact  = "Exact"
	MatchPrefix = "PathPrefix"
	MatchRegex  = "RegularExpression"
)

// PathMatch matches the request path. Regex values are RE2 and match the whole path.
// A prefix matches whole segments: "/api" matches "/api" and "/api/x", not "/apix".
type PathMatch struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ValueMatch matches a header (name canonicalised) or query parameter.
type ValueMatch struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HeaderModifier edits headers; names are canonicalised.
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Header is a name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Rewrite changes the request before it goes upstream.
type Rewrite struct {
	Hostname string `json:"hostname,omitempty"`
	// FullPath replaces the whole path.
	FullPath string `json:"fullPath,omitempty"`
	// PrefixPath replaces the part of the path the PathPrefix match matched.
	PrefixPath *string `json:"prefixPath,omitempty"`
}

// Redirect answers with a Location instead of proxying.
type Redirect struct {
	Scheme     string  `json:"scheme,omitempty"`
	Hostname   string  `json:"hostname,omitempty"`
	Port       int32   `json:"port,omitempty"`
	FullPath   string  `json:"fullPath,omitempty"`
	PrefixPath *string `json:"prefixPath,omitempty"`
	StatusCode int     `json:"statusCode"`
}

// Backend is a weighted upstream name.
type Backend struct {
	Upstream string `json:"upstream"`
	Weight   int32  `json:"weight"`
}

// Upstream protocols.
const (
	UpstreamHTTP  = "http"
	UpstreamH2C   = "h2c"
	UpstreamHTTPS = "https"
	UpstreamH2    = "h2"
)

// Upstream is a resolved set of endpoints.
type Upstream struct {
	Name      string       `json:"name"`
	Protocol  string       `json:"protocol"`
	Algorithm string       `json:"algorithm"`
	Endpoints []Endpoint   `json:"endpoints"`
	TLS       *UpstreamTLS `json:"tls,omitempty"`
	UpstreamTraffic
}

// Endpoint is one host:port and its weight (at least 1).
type Endpoint struct {
	Address string            `json:"address"`
	Weight  int32             `json:"weight"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// UpstreamTLS configures TLS towards endpoints.
type UpstreamTLS struct {
	SNI                string `json:"sni,omitempty"`
	CACertificate      string `json:"caCertificate,omitempty"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
	// ClientCertificate and ClientKey (PEM) authenticate Portico to the endpoints (mTLS).
	ClientCertificate string `json:"clientCertificate,omitempty"`
	ClientKey         string `json:"clientKey,omitempty"`
}

// Certificate is a PEM chain and key and the hosts it serves. The key is redacted
// when a snapshot is shown (see Redacted).
type Certificate struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
	Cert  string   `json:"cert"`
	Key   string   `json:"key"`
}

// StreamRoute is an L4 forwarding rule on a TCP, TLS or UDP listener.
type StreamRoute struct {
	Name     string    `json:"name"`
	Listener string    `json:"listener"`
	SNI      []string  `json:"sni,omitempty"`
	Backends []Backend `json:"backends"`
	// IdleTimeoutMillis closes a TCP connection or UDP session after this much silence
	// (default: TCP none, UDP 60 s).
	IdleTimeoutMillis int64 `json:"idleTimeoutMillis,omitempty"`
}

package v1alpha1

// Route routes HTTP (and gRPC) requests that match to weighted upstreams.
type Route struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     RouteSpec  `json:"spec"`
	Status   Status     `json:"status,omitempty"`
}

// DefaultGateway is the gateway a Route with no `gateways` attaches to.
const DefaultGateway = "default"

// RouteSpec says which requests a route takes and where they go.
type RouteSpec struct {
	// Gateways this route attaches to; empty means the Gateway named "default".
	Gateways []string `json:"gateways,omitempty"`
	// Hosts the route serves: exact names or "*.suffix" wildcards; empty means any host.
	Hosts []string `json:"hosts,omitempty"`
	// Matches are ORed; an empty list matches every request (PathPrefix "/").
	Matches  []RouteMatch   `json:"matches,omitempty"`
	Filters  []RouteFilter  `json:"filters,omitempty"`
	Backends []Backend      `json:"backends,omitempty"`
	Plugins  []PluginRef    `json:"plugins,omitempty"`
	Timeouts *RouteTimeouts `json:"timeouts,omitempty"`
	Retry    *RouteRetry    `json:"retry,omitempty"`
	// Mirror copies a share of requests to another upstream.
	Mirror *Mirror `json:"mirror,omitempty"`
	// Fault injects delays and aborts (testing resilience).
	Fault *Fault `json:"fault,omitempty"`
}

// Path match types (Gateway API names).
const (
	PathExact  = "Exact"
	PathPrefix = "PathPrefix"
	PathRegex  = "RegularExpression"
)

// Header and query match types.
const (
	MatchExact = "Exact"
	MatchRegex = "RegularExpression"
)

// RouteMatch is one set of conditions that must all hold.
type RouteMatch struct {
	Path        *PathMatch   `json:"path,omitempty"`
	Method      string       `json:"method,omitempty"`
	Headers     []ValueMatch `json:"headers,omitempty"`
	QueryParams []ValueMatch `json:"queryParams,omitempty"`
}

// PathMatch matches the request path. Type defaults to PathPrefix.
type PathMatch struct {
	Type  string `json:"type,omitempty"`
	Value string `json:"value"`
}

// ValueMatch matches a header or query parameter by name. Type defaults to Exact.
type ValueMatch struct {
	Type  string `json:"type,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Filter types (Gateway API names).
const (
	FilterRequestHeaderModifier  = "RequestHeaderModifier"
	FilterResponseHeaderModifier = "ResponseHeaderModifier"
	FilterURLRewrite             = "URLRewrite"
	FilterRequestRedirect        = "RequestRedirect"
)

// RouteFilter changes a request or its response on the way through.
type RouteFilter struct {
	Type                   string           `json:"type"`
	RequestHeaderModifier  *HeaderModifier  `json:"requestHeaderModifier,omitempty"`
	ResponseHeaderModifier *HeaderModifier  `json:"responseHeaderModifier,omitempty"`
	URLRewrite             *URLRewrite      `json:"urlRewrite,omitempty"`
	RequestRedirect        *RequestRedirect `json:"requestRedirect,omitempty"`
}

// HeaderModifier sets, adds and removes headers.
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Header is a header name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Path modifier types (Gateway API names).
const (
	ReplaceFullPath    = "ReplaceFullPath"
	ReplacePrefixMatch = "ReplacePrefixMatch"
)

// PathModifier rewrites a path: the whole path, or the part a PathPrefix match matched.
type PathModifier struct {
	Type               string `json:"type"`
	ReplaceFullPath    string `json:"replaceFullPath,omitempty"`
	ReplacePrefixMatch string `json:"replacePrefixMatch,omitempty"`
}

// URLRewrite rewrites the request before it goes upstream.
type URLRewrite struct {
	Hostname string        `json:"hostname,omitempty"`
	Path     *PathModifier `json:"path,omitempty"`
}

// RequestRedirect answers with a redirect instead of proxying.
type RequestRedirect struct {
	Scheme     string        `json:"scheme,omitempty"`
	Hostname   string        `json:"hostname,omitempty"`
	Port       int32         `json:"port,omitempty"`
	Path       *PathModifier `json:"path,omitempty"`
	StatusCode int           `json:"statusCode,omitempty"` // 301, 302 (default), 303, 307 or 308
}

// Backend is a weighted reference to an Upstream.
type Backend struct {
	Upstream string `json:"upstream"`
	// Weight is relative to the route's other backends; nil means 1, 0 sends nothing.
	Weight *int32 `json:"weight,omitempty"`
}

// PluginRef attaches a plugin with its configuration.
type PluginRef struct {
	Name   string         `json:"name"`
	Config map[string]any `json:"config,omitempty"`
}

// RouteTimeouts bound how long a request may take. Values are Go durations ("15s").
type RouteTimeouts struct {
	Request string `json:"request,omitempty"`
	// Idle bounds silence between body bytes.
	Idle string `json:"idle,omitempty"`
}

// RouteRetry configures retries. On: connect-failure, reset, gateway-error, 5xx,
// retriable-status-codes (with statusCodes).
type RouteRetry struct {
	Attempts      int32    `json:"attempts,omitempty"`
	On            []string `json:"on,omitempty"`
	StatusCodes   []int32  `json:"statusCodes,omitempty"`
	PerTryTimeout string   `json:"perTryTimeout,omitempty"`
	// Backoff between tries: exponential from base (default 25ms) to max (default 250ms), with jitter.
	Backoff *RetryBackoff `json:"backoff,omitempty"`
	// NonIdempotent allows retrying POST, PATCH and other non-idempotent methods.
	NonIdempotent bool `json:"nonIdempotent,omitempty"`
}

// RetryBackoff is the exponential backoff between retries.
type RetryBackoff struct {
	Base string `json:"base,omitempty"`
	Max  string `json:"max,omitempty"`
}

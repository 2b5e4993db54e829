package v1alpha1

// Gateway is a fleet of data planes and the listeners they open.
type Gateway struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     GatewaySpec `json:"spec"`
	Status   Status      `json:"status,omitempty"`
}

// GatewaySpec lists a gateway's listeners.
type GatewaySpec struct {
	Listeners []Listener `json:"listeners"`
	// Plugins run on every route attached to this gateway (unless a more specific level
	// configures the same plugin).
	Plugins []PluginRef `json:"plugins,omitempty"`
}

// Listener protocols.
const (
	ProtocolHTTP  = "HTTP"
	ProtocolHTTPS = "HTTPS"
	ProtocolTCP   = "TCP"
	ProtocolTLS   = "TLS"
	ProtocolUDP   = "UDP"
)

// Listener is one port a gateway serves.
type Listener struct {
	Name     string `json:"name"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol"`
	// Address binds one IP; empty means every address.
	Address string `json:"address,omitempty"`
	// Hostname, when set, limits the routes this listener serves to matching hosts
	// (exact, or a leading "*." wildcard), as in the Gateway API.
	Hostname string       `json:"hostname,omitempty"`
	TLS      *ListenerTLS `json:"tls,omitempty"`
	// ProxyProtocol accepts a PROXY protocol (v1/v2) header from trusted sources.
	ProxyProtocol *ProxyProtocolAccept `json:"proxyProtocol,omitempty"`
}

// ProxyProtocolAccept lists the downstream sources (load balancers) that must send a
// PROXY header; other sources are served as direct clients and refused if they send one.
type ProxyProtocolAccept struct {
	TrustedCIDRs []string `json:"trustedCIDRs"`
}

// ListenerTLS selects the certificates an HTTPS or TLS listener presents.
type ListenerTLS struct {
	// CertificateRefs name Certificate objects; the one matching the client's SNI is served,
	// and the first one is the default when no SNI matches.
	CertificateRefs []string `json:"certificateRefs,omitempty"`
}

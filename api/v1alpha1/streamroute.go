package v1alpha1

// StreamRoute forwards an L4 listener (TCP, TLS passthrough by SNI, UDP) to an upstream.
// The traffic-management work implements its data plane; translation validates it now.
type StreamRoute struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     StreamRouteSpec `json:"spec"`
	Status   Status          `json:"status,omitempty"`
}

// StreamRouteSpec names the listener and the backends.
type StreamRouteSpec struct {
	Gateways []string `json:"gateways,omitempty"`
	// Listener is the name of a Gateway listener with protocol TCP, TLS or UDP.
	Listener string `json:"listener"`
	// SNI selects this route on a TLS passthrough listener.
	SNI      []string  `json:"sni,omitempty"`
	Backends []Backend `json:"backends"`
	// IdleTimeout closes a connection or UDP session after this much silence
	// (default: TCP none, UDP 60s).
	IdleTimeout string `json:"idleTimeout,omitempty"`
}

// Package v1alpha1 holds Portico's resource types (group portico.dev, version v1alpha1).
//
// Every source — files, the admin API, Kubernetes — produces these same objects, so one
// schema and one validator serve them all. The shapes follow the Gateway API where a
// Gateway API concept exists, so users and the Kubernetes translation meet no surprises.
package v1alpha1

// APIVersion is the apiVersion every Portico object carries.
const APIVersion = "portico.dev/v1alpha1"

// Kind names, as they appear in the `kind` field.
const (
	KindGateway     = "Gateway"
	KindRoute       = "Route"
	KindUpstream    = "Upstream"
	KindCertificate = "Certificate"
	KindStreamRoute = "StreamRoute"
)

// Kinds lists every kind this version knows, in the order objects are listed and applied.
var Kinds = []string{KindGateway, KindCertificate, KindUpstream, KindRoute, KindStreamRoute, KindConsumer, KindPlugin}

// TypeMeta identifies an object's schema.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the identity and bookkeeping every object shares.
type ObjectMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// ResourceVersion supports optimistic concurrency in the admin API; files leave it empty.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// CreationTimestamp (RFC 3339) breaks route precedence ties: the older route wins.
	CreationTimestamp string `json:"creationTimestamp,omitempty"`
}

// Condition is one aspect of an object's state, as in Kubernetes' metav1.Condition.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"` // "True" or "False"
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// Status is the read-only part of every object: what Portico made of it.
type Status struct {
	Conditions []Condition `json:"conditions,omitempty"`
}

// Condition types and reasons shared by every kind.
const (
	ConditionAccepted   = "Accepted"
	ConditionResolved   = "ResolvedRefs"
	ConditionProgrammed = "Programmed"

	ReasonAccepted         = "Accepted"
	ReasonInvalid          = "Invalid"
	ReasonResolved         = "ResolvedRefs"
	ReasonBackendNotFound  = "BackendNotFound"
	ReasonCertNotFound     = "InvalidCertificateRef"
	ReasonNoGateway        = "NoMatchingParent"
	ReasonNoListener       = "NoMatchingListenerHostname"
	ReasonListenerConflict = "ListenerConflict"
	ReasonDuplicate        = "Duplicate"

	// ReasonProgrammed: the object is part of the published configuration.
	ReasonProgrammed = "Programmed"
	// ReasonNotProgrammed: the object is left out of the configuration (another
	// condition, or a parent's status, says why).
	ReasonNotProgrammed = "NotProgrammed"
	// ReasonNotAllowed: the parent has no listener of a kind the route can use
	// (e.g. a Route on a gateway with only TCP listeners).
	ReasonNotAllowed = "NotAllowedByListeners"
	// ReasonRouteConflict: another StreamRoute already takes the same listener (and SNI).
	ReasonRouteConflict = "RouteConflict"
)

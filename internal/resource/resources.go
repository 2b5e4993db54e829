// Package resource is the one input model: every source (files, the admin API's store,
// Kubernetes) produces a Resources value, and translation reads nothing else.
package resource

import (
	"strconv"

	"portico.dev/portico/api/v1alpha1"
)

// Resources is a complete set of objects from one or more sources.
type Resources struct {
	Gateways     []*v1alpha1.Gateway     `json:"gateways,omitempty"`
	Routes       []*v1alpha1.Route       `json:"routes,omitempty"`
	Upstreams    []*v1alpha1.Upstream    `json:"upstreams,omitempty"`
	Certificates []*v1alpha1.Certificate `json:"certificates,omitempty"`
	StreamRoutes []*v1alpha1.StreamRoute `json:"streamRoutes,omitempty"`
	// Consumers are API clients; their credentials are secrets (see ir.Credential).
	Consumers []*v1alpha1.Consumer `json:"consumers,omitempty"`
	// Plugins are Plugin objects: global, or attached to a Gateway, Route or Upstream.
	Plugins []*v1alpha1.Plugin `json:"plugins,omitempty"`

	// Origins says where each object came from (for messages); may be empty.
	Origins map[Key]Origin `json:"-"`
	// Validated, when set, holds each object's Validate() result, computed once by a
	// source that never changes an object after handing it out (the store mirror), so
	// translation does not validate 10k unchanged routes again on every write.
	Validated map[v1alpha1.Object][]v1alpha1.FieldError `json:"-"`
}

// Validate returns obj's validation problems, from Validated when it holds them.
func (r *Resources) Validate(obj v1alpha1.Object) []v1alpha1.FieldError {
	if errs, ok := r.Validated[obj]; ok {
		return errs
	}
	return obj.Validate()
}

// Key identifies an object across kinds.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// String renders a key as "Kind/name" or "Kind/namespace/name".
func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// Origin is where an object was read: a file and the 1-based document in it.
type Origin struct {
	File     string
	Document int
	// Item is the 1-based position inside a list document (a JSON array or a
	// `kind: List`); 0 when the document is the object itself.
	Item int
}

// String renders an origin as "file: document 2" or "file: document 1 item 3".
func (o Origin) String() string {
	s := o.File
	if o.Document > 0 {
		s += ": document " + strconv.Itoa(o.Document)
	}
	if o.Item > 0 {
		s += " item " + strconv.Itoa(o.Item)
	}
	return s
}

// Add appends obj to the list of its kind; it reports false for a type it does not hold.
func (r *Resources) Add(obj v1alpha1.Object) bool {
	switch o := obj.(type) {
	case *v1alpha1.Gateway:
		r.Gateways = append(r.Gateways, o)
	case *v1alpha1.Route:
		r.Routes = append(r.Routes, o)
	case *v1alpha1.Upstream:
		r.Upstreams = append(r.Upstreams, o)
	case *v1alpha1.Certificate:
		r.Certificates = append(r.Certificates, o)
	case *v1alpha1.StreamRoute:
		r.StreamRoutes = append(r.StreamRoutes, o)
	case *v1alpha1.Consumer:
		r.Consumers = append(r.Consumers, o)
	case *v1alpha1.Plugin:
		r.Plugins = append(r.Plugins, o)
	default:
		return false
	}
	return true
}

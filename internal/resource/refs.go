package resource

import (
	"fmt"
	"strconv"

	"portico.dev/portico/api/v1alpha1"
)

// Reference is one field of an object that names another object. References resolve in
// the referring object's namespace, as translation resolves them.
type Reference struct {
	From  Key
	Field string
	To    Key
}

// References lists the hard references an object makes: Route backends and mirror and
// StreamRoute backends (Upstreams), Gateway listener certificateRefs (Certificates) and
// a Plugin's attachTo target. A Route's or StreamRoute's gateways are not among them: a
// route may be written before its gateway (translation reports NoMatchingParent), and
// every route without gateways names "default".
func References(obj v1alpha1.Object) []Reference {
	var out []Reference
	add := func(from Key, field, kind, name string) {
		out = append(out, Reference{From: from, Field: field, To: Key{Kind: kind, Namespace: from.Namespace, Name: name}})
	}
	backends := func(from Key, bs []v1alpha1.Backend) {
		for i, b := range bs {
			add(from, "spec.backends["+strconv.Itoa(i)+"].upstream", v1alpha1.KindUpstream, b.Upstream)
		}
	}
	switch o := obj.(type) {
	case *v1alpha1.Route:
		from := KeyOf(o)
		backends(from, o.Spec.Backends)
		if o.Spec.Mirror != nil {
			add(from, "spec.mirror.upstream", v1alpha1.KindUpstream, o.Spec.Mirror.Upstream)
		}
	case *v1alpha1.StreamRoute:
		backends(KeyOf(o), o.Spec.Backends)
	case *v1alpha1.Gateway:
		from := KeyOf(o)
		for i, l := range o.Spec.Listeners {
			if l.TLS == nil {
				continue
			}
			for j, c := range l.TLS.CertificateRefs {
				add(from, fmt.Sprintf("spec.listeners[%d].tls.certificateRefs[%d]", i, j), v1alpha1.KindCertificate, c)
			}
		}
	case *v1alpha1.Plugin:
		if a := o.Spec.AttachTo; a != nil {
			add(KeyOf(o), "spec.attachTo.name", a.Kind, a.Name)
		}
	}
	return out
}

// KeyOf returns an object's key (an empty Key for a type Resources does not hold).
func KeyOf(obj v1alpha1.Object) Key {
	var kind string
	var m *v1alpha1.ObjectMeta
	switch o := obj.(type) {
	case *v1alpha1.Gateway:
		kind, m = v1alpha1.KindGateway, &o.Metadata
	case *v1alpha1.Route:
		kind, m = v1alpha1.KindRoute, &o.Metadata
	case *v1alpha1.Upstream:
		kind, m = v1alpha1.KindUpstream, &o.Metadata
	case *v1alpha1.Certificate:
		kind, m = v1alpha1.KindCertificate, &o.Metadata
	case *v1alpha1.StreamRoute:
		kind, m = v1alpha1.KindStreamRoute, &o.Metadata
	case *v1alpha1.Consumer:
		kind, m = v1alpha1.KindConsumer, &o.Metadata
	case *v1alpha1.Plugin:
		kind, m = v1alpha1.KindPlugin, &o.Metadata
	default:
		return Key{}
	}
	return Key{Kind: kind, Namespace: m.Namespace, Name: m.Name}
}

// Objects returns every object in r, in v1alpha1.Kinds order.
func (r *Resources) Objects() []v1alpha1.Object {
	var out []v1alpha1.Object
	for _, kind := range v1alpha1.Kinds {
		switch kind {
		case v1alpha1.KindGateway:
			out = appendAll(out, r.Gateways)
		case v1alpha1.KindCertificate:
			out = appendAll(out, r.Certificates)
		case v1alpha1.KindUpstream:
			out = appendAll(out, r.Upstreams)
		case v1alpha1.KindRoute:
			out = appendAll(out, r.Routes)
		case v1alpha1.KindStreamRoute:
			out = appendAll(out, r.StreamRoutes)
		case v1alpha1.KindConsumer:
			out = appendAll(out, r.Consumers)
		case v1alpha1.KindPlugin:
			out = appendAll(out, r.Plugins)
		}
	}
	return out
}

func appendAll[T v1alpha1.Object](out []v1alpha1.Object, objs []T) []v1alpha1.Object {
	for _, o := range objs {
		out = append(out, o)
	}
	return out
}

// Find returns the object with key in r, or nil.
func (r *Resources) Find(key Key) v1alpha1.Object {
	for _, o := range r.Objects() {
		if KeyOf(o) == key {
			return o
		}
	}
	return nil
}

// ReferencedBy lists the references in r that point at key.
func ReferencedBy(r *Resources, key Key) []Reference {
	var out []Reference
	for _, o := range r.Objects() {
		for _, ref := range References(o) {
			if ref.To == key {
				out = append(out, ref)
			}
		}
	}
	return out
}

// CheckReferences checks the references that involve the objects named by keys, in r
// as it would be after a change: for each key present in r, every reference it makes
// must resolve; for each key absent from r (a delete), no object may still reference
// it. Each problem names the referring object and its field; the caller tells the two
// cases apart by whether the problem's object is among keys.
func CheckReferences(r *Resources, keys []Key) []Problem {
	index := map[Key]v1alpha1.Object{}
	for _, o := range r.Objects() {
		index[KeyOf(o)] = o
	}
	var out []Problem
	seen := map[Reference]bool{}
	report := func(ref Reference, msg string) {
		if seen[ref] {
			return
		}
		seen[ref] = true
		out = append(out, Problem{Kind: ref.From.Kind, Namespace: ref.From.Namespace, Name: ref.From.Name, Field: ref.Field, Message: msg})
	}
	deleted := map[Key]bool{}
	for _, key := range keys {
		obj, ok := index[key]
		if !ok {
			deleted[key] = true
			continue
		}
		for _, ref := range References(obj) {
			if index[ref.To] == nil {
				report(ref, missingMessage(ref.To))
			}
		}
	}
	if len(deleted) > 0 {
		for _, o := range r.Objects() {
			for _, ref := range References(o) {
				if deleted[ref.To] {
					report(ref, fmt.Sprintf("references %s, which would no longer exist", ref.To))
				}
			}
		}
	}
	return out
}

func missingMessage(to Key) string {
	msg := fmt.Sprintf("%s %q not found", to.Kind, to.Name)
	if to.Namespace != "" {
		msg += fmt.Sprintf(" in namespace %q", to.Namespace)
	}
	return msg
}

package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
)

// Roles a token can hold.
const (
	RoleAdmin  = "admin"
	RoleEditor = "editor"
	RoleViewer = "viewer"
)

// BootstrapActor is the actor recorded for the bootstrap admin token; no stored token
// may take this name.
const BootstrapActor = "admin"

// principal is the authenticated caller.
type principal struct {
	Name       string
	Role       string
	Gateways   []string
	Namespaces []string
}

// authenticate resolves the bearer token: the bootstrap admin token (compared in
// constant time) or a stored token found by the hash of its secret.
func (s *server) authenticate(ctx context.Context, r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errorf(CodeUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, errorf(CodeUnauthorized, "malformed Authorization header: want Bearer <token>")
	}
	if s.adminHash != nil {
		got := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(got[:], s.adminHash) == 1 {
			return &principal{Name: BootstrapActor, Role: RoleAdmin}, nil
		}
	}
	t, err := s.opts.Store.TokenBySecretHash(ctx, store.HashSecret(secret))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(CodeUnauthorized, "invalid token")
	}
	if err != nil {
		return nil, err
	}
	if !t.Expires.IsZero() && !time.Now().Before(t.Expires) {
		return &principal{Name: t.Name, Role: t.Role}, errorf(CodeUnauthorized, "token %q expired at %s", t.Name, t.Expires.UTC().Format(time.RFC3339))
	}
	return &principal{Name: t.Name, Role: t.Role, Gateways: t.Gateways, Namespaces: t.Namespaces}, nil
}

// canWrite reports whether the role may change objects.
func (p *principal) canWrite() bool { return p.Role == RoleAdmin || p.Role == RoleEditor }

// needRole fails unless the caller has one of roles.
func (p *principal) needRole(action string, roles ...string) error {
	if slices.Contains(roles, p.Role) {
		return nil
	}
	return errorf(CodeForbidden, "token %q has role %s, which may not %s (needs %s)", p.Name, p.Role, action, strings.Join(roles, " or "))
}

// namespaceAllowed reports whether ns is within the namespace scope ("" is the
// unnamespaced objects, only in scope when listed or when the scope is empty).
func (p *principal) namespaceAllowed(ns string) bool {
	return len(p.Namespaces) == 0 || slices.Contains(p.Namespaces, ns)
}

func (p *principal) gatewayAllowed(name string) bool {
	return len(p.Gateways) == 0 || slices.Contains(p.Gateways, name)
}

// scopeError explains why obj is outside the caller's scope, or returns nil.
// lookup finds a stored object (for a Plugin attached to a Route); it may be nil.
func (p *principal) scopeError(verb string, obj v1alpha1.Object, lookup func(resource.Key) v1alpha1.Object) *Error {
	key := resource.KeyOf(obj)
	deny := func(format string, args ...any) *Error {
		e := errorf(CodeForbidden, "token %q may not %s %s: "+format, append([]any{p.Name, verb, key}, args...)...)
		e.Object = key.String()
		return e
	}
	if !p.namespaceAllowed(key.Namespace) {
		return deny("namespace %q is outside its namespaces [%s]", key.Namespace, strings.Join(p.Namespaces, ", "))
	}
	if len(p.Gateways) == 0 {
		return nil
	}
	for _, g := range attachedGateways(obj, lookup) {
		if g.name == "*" {
			return deny("it applies to every gateway, and the token is limited to gateways [%s]", strings.Join(p.Gateways, ", "))
		}
		if !p.gatewayAllowed(g.name) {
			e := deny("gateway %q is outside its gateways [%s]", g.name, strings.Join(p.Gateways, ", "))
			e.Field = g.field
			return e
		}
	}
	return nil
}

// gatewayRef is a gateway an object belongs to and the field that says so; name "*"
// means every gateway.
type gatewayRef struct{ name, field string }

// attachedGateways lists the gateways an object belongs to for gateway scoping.
// Upstreams, Certificates and Consumers belong to none (namespace scope only).
func attachedGateways(obj v1alpha1.Object, lookup func(resource.Key) v1alpha1.Object) []gatewayRef {
	list := func(names []string) []gatewayRef {
		if len(names) == 0 {
			return []gatewayRef{{v1alpha1.DefaultGateway, "spec.gateways"}}
		}
		out := make([]gatewayRef, len(names))
		for i, n := range names {
			out[i] = gatewayRef{n, fmt.Sprintf("spec.gateways[%d]", i)}
		}
		return out
	}
	switch o := obj.(type) {
	case *v1alpha1.Gateway:
		return []gatewayRef{{o.Metadata.Name, "metadata.name"}}
	case *v1alpha1.Route:
		return list(o.Spec.Gateways)
	case *v1alpha1.StreamRoute:
		return list(o.Spec.Gateways)
	case *v1alpha1.Plugin:
		a := o.Spec.AttachTo
		switch {
		case a == nil:
			return []gatewayRef{{"*", "spec.attachTo"}}
		case a.Kind == v1alpha1.KindGateway:
			return []gatewayRef{{a.Name, "spec.attachTo.name"}}
		case a.Kind == v1alpha1.KindRoute && lookup != nil:
			if rt, ok := lookup(resource.Key{Kind: v1alpha1.KindRoute, Namespace: o.Metadata.Namespace, Name: a.Name}).(*v1alpha1.Route); ok && rt != nil {
				refs := list(rt.Spec.Gateways)
				for i := range refs {
					refs[i].field = "spec.attachTo.name"
				}
				return refs
			}
		}
	}
	return nil
}

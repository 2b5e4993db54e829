package admin

import (
	"encoding/json"
	"strings"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
)

// redacted replaces a secret a caller may not see.
const redacted = "<redacted>"

// decodeStored decodes a stored object into its type.
func decodeStored(o *store.Object) (v1alpha1.Object, error) {
	v := v1alpha1.NewObject(o.Key.Kind)
	if v == nil {
		return nil, errorf(CodeInternal, "stored object %s has an unknown kind", o.Key)
	}
	if err := json.Unmarshal(o.JSON, v); err != nil {
		return nil, &Error{Code: CodeInternal, Message: "decoding a stored object failed", cause: err}
	}
	return v, nil
}

// clone deep-copies an object through JSON.
func clone(obj v1alpha1.Object) v1alpha1.Object {
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err) // the types always marshal
	}
	c := v1alpha1.NewObject(resource.KeyOf(obj).Kind)
	if err := json.Unmarshal(b, c); err != nil {
		panic(err)
	}
	return c
}

// meta and status return an object's metadata and status.
func meta(obj v1alpha1.Object) (*v1alpha1.ObjectMeta, *v1alpha1.Status) {
	switch o := obj.(type) {
	case *v1alpha1.Gateway:
		return &o.Metadata, &o.Status
	case *v1alpha1.Route:
		return &o.Metadata, &o.Status
	case *v1alpha1.Upstream:
		return &o.Metadata, &o.Status
	case *v1alpha1.Certificate:
		return &o.Metadata, &o.Status
	case *v1alpha1.StreamRoute:
		return &o.Metadata, &o.Status
	case *v1alpha1.Consumer:
		return &o.Metadata, &o.Status
	case *v1alpha1.Plugin:
		return &o.Metadata, &o.Status
	}
	return &v1alpha1.ObjectMeta{}, &v1alpha1.Status{}
}

// render prepares an object for a caller: a copy with the current status conditions
// and with the secrets the caller's role may not see redacted.
func (s *server) render(rq *request, obj v1alpha1.Object) v1alpha1.Object {
	c := clone(obj)
	if rq.statuses == nil && s.opts.Statuses != nil {
		rq.statuses = s.opts.Statuses() // once per request
	}
	if conds, ok := rq.statuses[resource.KeyOf(obj)]; ok {
		_, st := meta(c)
		st.Conditions = conds
	}
	redact(c, rq.p.Role)
	return c
}

// redact hides secrets: private keys (Certificate key, Upstream client key) from every
// role but admin; consumer credentials and plugin secrets from viewers.
func redact(obj v1alpha1.Object, role string) {
	hide := func(s *string) {
		if *s != "" {
			*s = redacted
		}
	}
	viewer := role == RoleViewer
	switch o := obj.(type) {
	case *v1alpha1.Certificate:
		if role != RoleAdmin {
			hide(&o.Spec.Key)
		}
	case *v1alpha1.Upstream:
		if role != RoleAdmin && o.Spec.TLS != nil {
			hide(&o.Spec.TLS.ClientKey)
		}
		if viewer {
			redactRefs(o.Spec.Plugins)
		}
	case *v1alpha1.Consumer:
		if viewer {
			for i := range o.Spec.Credentials {
				c := &o.Spec.Credentials[i]
				if c.Type != "jwt-auth" { // a jwt-auth key is the issuer, not a secret
					hide(&c.Key)
				}
				hide(&c.Password)
				hide(&c.PasswordHash)
				hide(&c.Secret)
			}
			redactRefs(o.Spec.Plugins)
		}
	case *v1alpha1.Gateway:
		if viewer {
			redactRefs(o.Spec.Plugins)
		}
	case *v1alpha1.Route:
		if viewer {
			redactRefs(o.Spec.Plugins)
		}
	case *v1alpha1.Plugin:
		if viewer {
			redactConfig(o.Spec.Config)
		}
	}
}

// secretConfigKeys are plugin config keys whose values viewers never see (compared
// case-insensitively, ignoring '-' and '_').
var secretConfigKeys = map[string]bool{
	"password": true, "secret": true, "token": true, "clientsecret": true, "apikey": true, "privatekey": true, "key": true,
}

func redactRefs(refs []v1alpha1.PluginRef) {
	for _, r := range refs {
		redactConfig(r.Config)
	}
}

func redactConfig(m map[string]any) {
	for k, v := range m {
		norm := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(k))
		if secretConfigKeys[norm] {
			if _, isString := v.(string); isString {
				m[k] = redacted
				continue
			}
		}
		redactValue(v)
	}
}

func redactValue(v any) {
	switch t := v.(type) {
	case map[string]any:
		redactConfig(t)
	case []any:
		for _, e := range t {
			redactValue(e)
		}
	}
}

// canonical renders what a write changes: the object without resourceVersion,
// creationTimestamp and status. Two objects with equal canonical forms are the same.
func canonical(obj v1alpha1.Object) string {
	c := clone(obj)
	m, st := meta(c)
	m.ResourceVersion, m.CreationTimestamp = "", ""
	*st = v1alpha1.Status{}
	b, _ := json.Marshal(c)
	return string(b)
}

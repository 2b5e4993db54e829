package v1alpha1

import "strings"

// Credential types a Consumer may carry.
const (
	// CredentialKeyAuth is an API key (field key), checked by the key-auth plugin.
	CredentialKeyAuth = "key-auth"
	// CredentialBasicAuth is a username and password (or password hash), checked by
	// the basic-auth plugin.
	CredentialBasicAuth = "basic-auth"
	// CredentialJWTAuth is a JWT issuer key with its secret or public key, checked by
	// the jwt-auth plugin.
	CredentialJWTAuth = "jwt-auth"
)

// CredentialTypes lists the credential types this version knows.
var CredentialTypes = []string{CredentialKeyAuth, CredentialBasicAuth, CredentialJWTAuth}

// MinKeyLength is the shortest key-auth key accepted: shorter keys are guessable.
const MinKeyLength = 8

// AttachKinds are the kinds a Plugin object may attach to.
var AttachKinds = []string{KindGateway, KindRoute, KindUpstream}

// Validate checks a Consumer on its own and returns every problem found. Messages never
// repeat a secret.
func (c *Consumer) Validate() []FieldError {
	var errs fieldErrors
	validateMeta(&errs, c.TypeMeta, &c.Metadata, KindConsumer)
	seen := map[[2]string]int{} // (type, identifying value) → credential index
	for i, cr := range c.Spec.Credentials {
		p := at("spec.credentials", i)
		field, id := validateCredential(&errs, p, &cr)
		if id == "" {
			continue
		}
		k := [2]string{cr.Type, id}
		if j, dup := seen[k]; dup {
			errs.add(p+"."+field, "same %s as %s", field, at("spec.credentials", j))
		} else {
			seen[k] = i
		}
	}
	groups := map[string]int{}
	for i, g := range c.Spec.Groups {
		p := at("spec.groups", i)
		switch {
		case g == "":
			errs.add(p, "must not be empty")
		case hasSpaceOrControl(g):
			errs.add(p, "must not contain spaces or control characters, got %q", g)
		}
		if j, dup := groups[g]; dup && g != "" {
			errs.add(p, "duplicate of %s", at("spec.groups", j))
		} else {
			groups[g] = i
		}
	}
	validatePluginRefs(&errs, "spec.plugins", c.Spec.Plugins)
	return errs
}

// Validate checks a Plugin object on its own: the plugin's config is checked against
// its schema by translation, which knows the registered plugins.
func (p *Plugin) Validate() []FieldError {
	var errs fieldErrors
	validateMeta(&errs, p.TypeMeta, &p.Metadata, KindPlugin)
	checkName(&errs, "spec.plugin", p.Spec.Plugin)
	if a := p.Spec.AttachTo; a != nil {
		switch a.Kind {
		case KindGateway, KindRoute, KindUpstream:
		case "":
			errs.add("spec.attachTo.kind", "required: one of %s", strings.Join(AttachKinds, ", "))
		default:
			errs.add("spec.attachTo.kind", "unknown kind %q: one of %s", a.Kind, strings.Join(AttachKinds, ", "))
		}
		checkName(&errs, "spec.attachTo.name", a.Name)
	}
	return errs
}

// validatePluginRefs checks an inline plugin list: names are required and appear once.
func validatePluginRefs(errs *fieldErrors, field string, refs []PluginRef) {
	seen := map[string]int{}
	for i, pl := range refs {
		p := at(field, i)
		checkName(errs, p+".name", pl.Name)
		if j, dup := seen[pl.Name]; dup && pl.Name != "" {
			errs.add(p+".name", "duplicate of %s", at(field, j))
		} else {
			seen[pl.Name] = i
		}
	}
}

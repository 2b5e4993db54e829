package v1alpha1

// Kinds added by the plugin work.
const (
	KindConsumer = "Consumer"
	KindPlugin   = "Plugin"
)

// Condition reasons added by the plugin work.
const (
	// ReasonTargetNotFound: a Plugin's attachTo names an object that does not exist
	// (or is invalid).
	ReasonTargetNotFound = "TargetNotFound"
	// ReasonPluginConflict: a route's upstreams configure one plugin differently.
	ReasonPluginConflict = "PluginConflict"
)

// Consumer is an API client: its credentials, groups and the plugins that apply to it
// once it is identified.
type Consumer struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta   `json:"metadata"`
	Spec     ConsumerSpec `json:"spec"`
	Status   Status       `json:"status,omitempty"`
}

// ConsumerSpec holds credentials, groups and plugins.
type ConsumerSpec struct {
	Credentials []Credential `json:"credentials,omitempty"`
	// Groups are used by the acl plugin.
	Groups []string `json:"groups,omitempty"`
	// Plugins attached to this consumer override same-named route plugins for its requests.
	Plugins []PluginRef `json:"plugins,omitempty"`
}

// Credential is one way a consumer authenticates. Type selects the fields:
//
//   - key-auth: key.
//   - basic-auth: username and password or passwordHash (bcrypt or argon2id PHC).
//     A plain password is replaced by a bcrypt passwordHash where it enters (the
//     file loader, resource.Parse); it never reaches a data plane.
//   - jwt-auth: key (matched against the token's consumer claim, "iss" by default) and
//     secret (HS256/384/512) or publicKey (PEM: RSA, ECDSA or Ed25519), or neither for
//     a consumer identified only by tokens verified with the plugin's JWKS.
//
// Secrets are hashed before they reach a data plane where possible (an HMAC secret
// cannot be) and are never shown back.
type Credential struct {
	Type         string `json:"type"`
	Key          string `json:"key,omitempty"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	PasswordHash string `json:"passwordHash,omitempty"`
	Secret       string `json:"secret,omitempty"`
	PublicKey    string `json:"publicKey,omitempty"`
}

// Plugin configures a plugin globally (no attachTo) or for one Gateway, Route or Upstream.
// A Route's, Gateway's or Upstream's inline `plugins` list and Plugin objects attached to
// it are the same level; for one plugin name the most specific level wins:
// consumer > route > upstream > gateway > global.
type Plugin struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     PluginSpec `json:"spec"`
	Status   Status     `json:"status,omitempty"`
}

// PluginSpec names the plugin, its config and where it attaches.
type PluginSpec struct {
	Plugin   string         `json:"plugin"`
	Config   map[string]any `json:"config,omitempty"`
	AttachTo *AttachRef     `json:"attachTo,omitempty"`
}

// AttachRef names the object a Plugin attaches to.
type AttachRef struct {
	Kind string `json:"kind"` // Gateway, Route or Upstream
	Name string `json:"name"`
}

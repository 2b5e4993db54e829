// Package keyauth is the key-auth plugin: it identifies the consumer from an API key
// sent in a header or a query parameter. Keys are stored only as SHA-256 hashes
// (ir.Credential field "keyHash"); see README.md for the user manual.
package keyauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's name in configuration.
const Name = "key-auth"

// CredentialType is the consumer credential type this plugin reads.
const CredentialType = "key-auth"

// Headers the plugin sets on the upstream request (client-sent ones are removed).
const (
	HeaderUsername  = "X-Consumer-Username"
	HeaderAnonymous = "X-Anonymous-Consumer"
)

// Config is the plugin's configuration.
type Config struct {
	// Header carries the key; default "apikey".
	Header string `json:"header,omitempty"`
	// Query, when set, names a query parameter that may carry the key (the header
	// is looked at first).
	Query string `json:"query,omitempty"`
	// HideCredentials removes the key from the request before it goes upstream;
	// default true.
	HideCredentials *bool `json:"hideCredentials,omitempty"`
	// Anonymous names the consumer used when the request carries no key.
	Anonymous string `json:"anonymous,omitempty"`
}

// Validate checks the field values.
func (c *Config) Validate() error {
	if c.Header != "" && !isToken(c.Header) {
		return &plugin.FieldError{Field: "header", Message: fmt.Sprintf("%q is not a valid header name", c.Header)}
	}
	if c.Query != "" && strings.ContainsAny(c.Query, "&=#? ") {
		return &plugin.FieldError{Field: "query", Message: fmt.Sprintf("%q is not a valid query parameter name", c.Query)}
	}
	return nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, b) >= 0 {
			return false
		}
	}
	return true
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, env *plugin.Env) (any, error) { return New(cfg.(*Config), env) },
	})
}

// identity is a consumer as this plugin forwards it.
type identity struct {
	consumer *plugin.Consumer
	hash     [sha256.Size]byte
	username []string // X-Consumer-Username value, shared read-only
}

// KeyAuth is one configured instance. It is immutable and safe for concurrent use.
type KeyAuth struct {
	header string // canonical
	query  string
	hide   bool
	anon   *identity
	keys   map[[sha256.Size]byte]*identity

	missing, invalid *plugin.Reply
}

var valTrue = []string{"true"}[:1:1]

// New builds the key index from env's consumers. Two consumers with the same key, a
// malformed keyHash or an unknown anonymous consumer are errors: the snapshot is
// refused rather than authenticating ambiguously.
func New(cfg *Config, env *plugin.Env) (*KeyAuth, error) {
	k := &KeyAuth{
		header: http.CanonicalHeaderKey(cfg.Header),
		query:  cfg.Query,
		hide:   cfg.HideCredentials == nil || *cfg.HideCredentials,
		keys:   map[[sha256.Size]byte]*identity{},
	}
	if k.header == "" {
		k.header = "Apikey"
	}
	var consumers []*plugin.Consumer
	if env != nil {
		consumers = env.Consumers.All()
	}
	for _, c := range consumers {
		for _, cred := range c.Credentials {
			if cred.Type != CredentialType {
				continue
			}
			raw, err := hex.DecodeString(cred.Fields["keyHash"])
			if err != nil || len(raw) != sha256.Size {
				return nil, fmt.Errorf("consumer %q: key-auth credential has no valid keyHash", c.Name)
			}
			id := &identity{consumer: c, username: []string{c.Name}[:1:1]}
			copy(id.hash[:], raw)
			if other, dup := k.keys[id.hash]; dup && other.consumer != c {
				return nil, fmt.Errorf("consumers %q and %q have the same key", other.consumer.Name, c.Name)
			}
			k.keys[id.hash] = id
		}
	}
	if cfg.Anonymous != "" {
		c, ok := env.Consumers.Get(cfg.Anonymous)
		if !ok {
			return nil, &plugin.FieldError{Field: "anonymous", Message: fmt.Sprintf("consumer %q does not exist", cfg.Anonymous)}
		}
		k.anon = &identity{consumer: c, username: []string{c.Name}[:1:1]}
	}
	k.missing = unauthorized("missing API key")
	k.invalid = unauthorized("invalid API key")
	return k, nil
}

func unauthorized(msg string) *plugin.Reply {
	r := plugin.JSONError(http.StatusUnauthorized, "unauthorized", msg)
	r.Header["Www-Authenticate"] = []string{`Key realm="portico"`}
	return r
}

// Access identifies the consumer or answers 401.
func (k *KeyAuth) Access(c *plugin.Context) error {
	r := c.Request
	h := r.Header
	delete(h, HeaderUsername)
	delete(h, HeaderAnonymous)

	key, inQuery := "", false
	if vv := h[k.header]; len(vv) > 0 && vv[0] != "" {
		key = vv[0]
	} else if k.query != "" {
		key, inQuery = queryValue(r.URL.RawQuery, k.query)
	}
	if key == "" {
		if k.anon == nil {
			return k.missing
		}
		c.Consumer = k.anon.consumer
		h[HeaderUsername] = k.anon.username
		h[HeaderAnonymous] = valTrue
		return nil
	}
	id := k.lookup(key)
	if id == nil {
		return k.invalid
	}
	if k.hide {
		if inQuery {
			r.URL.RawQuery = removeQuery(r.URL.RawQuery, k.query)
		} else {
			delete(h, k.header)
		}
	}
	c.Consumer = id.consumer
	h[HeaderUsername] = id.username
	return nil
}

// lookup finds the consumer whose key hashes like key. The map is indexed by the
// SHA-256 of the key, so lookup timing depends only on the hash of what the client
// sent: it can reveal at most how a hash the attacker chose compares with stored
// hashes, and knowing part of a SHA-256 does not help find a key that produces it.
// The final equality check is still constant-time, as is good practice.
func (k *KeyAuth) lookup(key string) *identity {
	sum := sha256.Sum256([]byte(key))
	id := k.keys[sum]
	if id == nil || subtle.ConstantTimeCompare(id.hash[:], sum[:]) != 1 {
		return nil
	}
	return id
}

// queryValue returns the first non-empty value of parameter name in raw.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != name && unescape(k) != name {
			continue
		}
		if v = unescape(v); v != "" {
			return v, true
		}
	}
	return "", false
}

func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// removeQuery drops every occurrence of parameter name from raw, keeping the rest
// byte for byte.
func removeQuery(raw, name string) string {
	var b strings.Builder
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(part, "=")
		if k == name || unescape(k) == name {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

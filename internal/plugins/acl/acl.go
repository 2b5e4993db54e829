// Package acl is the acl plugin: it lets a request through, or not, by the groups of
// the consumer an authentication plugin identified. See README.md for the manual.
package acl

import (
	"net/http"

	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's name in configuration.
const Name = "acl"

// Config is the plugin's configuration: exactly one of Allow and Deny.
type Config struct {
	// Allow lets through consumers in at least one of these groups, and no one else.
	Allow []string `json:"allow,omitempty"`
	// Deny refuses consumers in any of these groups and lets the others through.
	Deny []string `json:"deny,omitempty"`
}

// Validate requires exactly one non-empty list without empty group names.
func (c *Config) Validate() error {
	switch {
	case len(c.Allow) == 0 && len(c.Deny) == 0:
		return &plugin.FieldError{Field: "allow", Message: "one of allow and deny is required"}
	case len(c.Allow) > 0 && len(c.Deny) > 0:
		return &plugin.FieldError{Field: "deny", Message: "allow and deny cannot both be set"}
	}
	for field, list := range map[string][]string{"allow": c.Allow, "deny": c.Deny} {
		for _, g := range list {
			if g == "" {
				return &plugin.FieldError{Field: field, Message: "empty group name"}
			}
		}
	}
	return nil
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, _ *plugin.Env) (any, error) { return New(cfg.(*Config)), nil },
	})
}

// ACL is one configured instance; immutable and safe for concurrent use.
type ACL struct {
	groups []string
	allow  bool
}

var (
	errNoConsumer = plugin.JSONError(http.StatusUnauthorized, "unauthorized", "authentication required")
	errForbidden  = plugin.JSONError(http.StatusForbidden, "forbidden", "you are not allowed to use this route")
)

// New builds an instance.
func New(cfg *Config) *ACL {
	if len(cfg.Allow) > 0 {
		return &ACL{groups: cfg.Allow, allow: true}
	}
	return &ACL{groups: cfg.Deny}
}

// Access answers 401 without an identified consumer and 403 when the consumer's
// groups are not allowed.
func (a *ACL) Access(c *plugin.Context) error {
	if c.Consumer == nil {
		return errNoConsumer
	}
	in := false
	for _, g := range a.groups {
		if c.Consumer.InGroup(g) {
			in = true
			break
		}
	}
	if in != a.allow {
		return errForbidden
	}
	return nil
}

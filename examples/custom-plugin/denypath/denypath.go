// Package denypath is an example custom Portico plugin, "deny-path": it answers
// requests whose path starts with one of the configured prefixes with a local error,
// and tags the responses of the requests it let through with a header.
package denypath

import (
	"fmt"
	"net/http"
	"strings"

	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's name in configuration.
const Name = "deny-path"

// Config is the plugin's configuration, decoded strictly from the route's JSON/YAML.
type Config struct {
	// Prefixes are the denied path prefixes, e.g. "/admin".
	Prefixes []string `json:"prefixes"`
	// Status is the status of the local reply; default 403.
	Status int `json:"status,omitempty"`
	// Tag, when set, is the value of an X-Deny-Path response header added to the
	// responses of allowed requests.
	Tag string `json:"tag,omitempty"`
}

// Validate runs at translate time: its errors become resource statuses and admin API
// 400s, so a bad config never reaches the data plane. It must not do I/O.
func (c *Config) Validate() error {
	if len(c.Prefixes) == 0 {
		return &plugin.FieldError{Field: "prefixes", Message: "at least one prefix is required"}
	}
	for i, p := range c.Prefixes {
		if !strings.HasPrefix(p, "/") {
			return &plugin.FieldError{Field: fmt.Sprintf("prefixes[%d]", i), Message: "must start with /"}
		}
	}
	if c.Status != 0 && (c.Status < 400 || c.Status > 599) {
		return &plugin.FieldError{Field: "status", Message: "must be a 4xx or 5xx status"}
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

// DenyPath is one configured instance. It is built once per configuration snapshot and
// shared by concurrent requests, so it is immutable.
type DenyPath struct {
	prefixes []string
	status   int
	tag      []string // header value, shared read-only
}

// New builds an instance from a validated config.
func New(cfg *Config) *DenyPath {
	d := &DenyPath{prefixes: cfg.Prefixes, status: cfg.Status}
	if d.status == 0 {
		d.status = http.StatusForbidden
	}
	if cfg.Tag != "" {
		d.tag = []string{cfg.Tag}
	}
	return d
}

// Access runs in the access phase: returning a *plugin.Reply answers the client and
// stops the chain.
func (d *DenyPath) Access(c *plugin.Context) error {
	for _, p := range d.prefixes {
		if strings.HasPrefix(c.Request.URL.Path, p) {
			c.Set("deny-path.denied", true)
			return plugin.JSONError(d.status, "path_denied", "this path is not available")
		}
	}
	return nil
}

// ResponseHeaders runs before the response headers are sent (also for local replies).
func (d *DenyPath) ResponseHeaders(c *plugin.Context) error {
	if denied, _ := c.Get("deny-path.denied"); d.tag != nil && denied == nil {
		c.Header["X-Deny-Path"] = d.tag
	}
	return nil
}

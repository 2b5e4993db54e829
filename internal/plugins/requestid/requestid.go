// Package requestid is the request-id plugin: it propagates or generates a request id
// in a configurable header, sends it upstream and, optionally, back to the client.
// See README.md for the user manual.
package requestid

import (
	"crypto/rand"
	"encoding/hex"
	"net/textproto"
	"strconv"
	"sync/atomic"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Name is the plugin's configuration name.
const Name = "request-id"

// CoreHeader is the header the data plane itself always propagates or generates.
const CoreHeader = "X-Request-Id"

// ContextKey is the plugin.Context key under which the request's id (a string) is
// stored for later plugins.
const ContextKey = "request-id"

// Generate modes.
const (
	GenerateIfMissing = "if-missing"
	GenerateAlways    = "always"
)

// Config is the plugin's configuration.
type Config struct {
	// Header carries the id (default X-Request-Id).
	Header string `json:"header,omitempty"`
	// Generate is "if-missing" (default: keep the client's id) or "always".
	Generate string `json:"generate,omitempty"`
	// IncludeInResponse sends the id back to the client (default true).
	IncludeInResponse *bool `json:"includeInResponse,omitempty"`
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Header != "" && !pluginutil.ValidHeaderName(c.Header) {
		return &plugin.FieldError{Field: "header", Message: "not a header name"}
	}
	switch c.Generate {
	case "", GenerateIfMissing, GenerateAlways:
	default:
		return &plugin.FieldError{Field: "generate", Message: `must be "if-missing" or "always"`}
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

// Plugin is one configured request-id instance.
type Plugin struct {
	header   string // canonical
	core     bool   // header is the core's X-Request-Id
	always   bool
	response bool
}

// New prepares an instance from a validated config.
func New(cfg *Config) *Plugin {
	h := CoreHeader
	if cfg.Header != "" {
		h = textproto.CanonicalMIMEHeaderKey(cfg.Header)
	}
	return &Plugin{header: h, core: h == CoreHeader, always: cfg.Generate == GenerateAlways,
		response: cfg.IncludeInResponse == nil || *cfg.IncludeInResponse}
}

// Rewrite settles the request's id and puts it in the configured header of the
// request. With "if-missing" the client's value wins; without one the id the data
// plane already uses (its X-Request-Id) is reused, so logs and headers agree. With
// "always" a fresh id replaces whatever the client sent.
func (p *Plugin) Rewrite(c *plugin.Context) error {
	h := c.Request.Header
	var id string
	if !p.always {
		if v := h[p.header]; len(v) > 0 && v[0] != "" {
			id = v[0]
		} else if v := h[CoreHeader]; len(v) > 0 && v[0] != "" {
			id = v[0]
		}
	}
	if id == "" {
		id = Next()
	}
	if v := h[p.header]; len(v) == 1 {
		// The core shares this slice with the response's X-Request-Id: editing it in
		// place keeps both in step.
		v[0] = id
	} else {
		h[p.header] = []string{id}
	}
	c.Set(ContextKey, id)
	return nil
}

// ResponseHeaders sends the id back in the configured header, or removes that header
// from the response when includeInResponse is false.
func (p *Plugin) ResponseHeaders(c *plugin.Context) error {
	if c.Header == nil {
		return nil
	}
	if !p.response {
		delete(c.Header, p.header)
		return nil
	}
	if v, ok := c.Get(ContextKey); ok {
		if id, _ := v.(string); id != "" {
			if cur := c.Header[p.header]; len(cur) != 1 || cur[0] != id {
				c.Header[p.header] = []string{id}
			}
		}
	}
	return nil
}

// Ids are "<16 hex digits>-r<counter in hex>": a prefix drawn once per process from
// crypto/rand, then one atomic increment per id. The "r" before the counter keeps
// them apart from the data plane's own ids, which share the shape.
var (
	prefix  string
	counter atomic.Uint64
)

func init() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix = hex.EncodeToString(b[:]) + "-r"
}

// Next returns a new process-unique request id.
func Next() string {
	var buf [48]byte
	b := append(buf[:0], prefix...)
	b = strconv.AppendUint(b, counter.Add(1), 16)
	return string(b)
}

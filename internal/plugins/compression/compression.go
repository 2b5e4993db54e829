// Package compression is the compression plugin: it compresses response bodies with
// brotli, zstd or gzip, negotiated with the client's Accept-Encoding. See README.md
// for the user manual.
package compression

import (
	"net/http"
	"strconv"
	"strings"

	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's configuration name.
const Name = "compression"

// Config is the plugin's configuration.
type Config struct {
	// Algorithms in order of preference: "br", "zstd", "gzip" (default all three).
	Algorithms []string `json:"algorithms,omitempty"`
	// MinLength is the smallest body (bytes, from Content-Length) worth compressing
	// (default 1024).
	MinLength *int `json:"minLength,omitempty"`
	// Types are compressible media types: exact ("application/json") or "type/*".
	Types []string `json:"types,omitempty"`
	// Level is "fastest", "default" (default) or "best".
	Level string `json:"level,omitempty"`
}

var defaultTypes = []string{"text/*", "application/json", "application/javascript", "application/xml", "image/svg+xml"}

// Validate checks the config; errors name the field.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i, a := range c.Algorithms {
		f := "algorithms[" + strconv.Itoa(i) + "]"
		if _, ok := parseAlgo(a); !ok {
			return &plugin.FieldError{Field: f, Message: `must be "br", "zstd" or "gzip"`}
		}
		if seen[a] {
			return &plugin.FieldError{Field: f, Message: "listed twice"}
		}
		seen[a] = true
	}
	if c.MinLength != nil && *c.MinLength < 0 {
		return &plugin.FieldError{Field: "minLength", Message: "must not be negative"}
	}
	for i, t := range c.Types {
		typ, sub, ok := strings.Cut(t, "/")
		if !ok || typ == "" || sub == "" || typ == "*" || strings.ContainsAny(t, " ;,") {
			return &plugin.FieldError{Field: "types[" + strconv.Itoa(i) + "]", Message: `must be "type/subtype" or "type/*"`}
		}
	}
	if _, ok := parseLevel(c.Level); !ok {
		return &plugin.FieldError{Field: "level", Message: `must be "fastest", "default" or "best"`}
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

// Plugin is one configured compression instance.
type Plugin struct {
	algos    []algo
	min      int64
	exact    map[string]bool // lower-case media types
	prefixes []string        // "text/" for "text/*"
	level    level
}

// New prepares an instance from a validated config.
func New(cfg *Config) *Plugin {
	p := &Plugin{min: 1024, exact: map[string]bool{}}
	p.level, _ = parseLevel(cfg.Level)
	if cfg.MinLength != nil {
		p.min = int64(*cfg.MinLength)
	}
	names := cfg.Algorithms
	if len(names) == 0 {
		names = []string{"br", "zstd", "gzip"}
	}
	for _, n := range names {
		a, _ := parseAlgo(n)
		p.algos = append(p.algos, a)
	}
	types := cfg.Types
	if len(types) == 0 {
		types = defaultTypes
	}
	for _, t := range types {
		t = strings.ToLower(t)
		if pre, ok := strings.CutSuffix(t, "/*"); ok {
			p.prefixes = append(p.prefixes, pre+"/")
		} else {
			p.exact[t] = true
		}
	}
	return p
}

const ctxKey = "compression"

var varyValue = []string{"Accept-Encoding"}

// ResponseHeaders decides whether this response is compressed. Compressed responses
// get Content-Encoding and a weak ETag and lose Content-Length; every compressible
// response gets Vary: Accept-Encoding. The decision is kept for WrapBody.
func (p *Plugin) ResponseHeaders(c *plugin.Context) error {
	h, r := c.Header, c.Request
	if h == nil || r == nil || len(h["Content-Encoding"]) > 0 || c.Status == http.StatusPartialContent ||
		len(h["Content-Range"]) > 0 || !p.compressible(h) || noTransform(h) {
		return nil
	}
	addVary(h)
	if !bodyAllowed(r.Method, c.Status) {
		return nil
	}
	cl := h["Content-Length"]
	if len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n < p.min {
			return nil
		}
	}
	a, ok := negotiate(r.Header["Accept-Encoding"], p.algos)
	if !ok {
		return nil
	}
	h["Content-Encoding"] = encodingValue[a]
	delete(h, "Content-Length")
	if et := h["Etag"]; len(et) > 0 && strings.HasPrefix(et[0], `"`) {
		h["Etag"] = []string{"W/" + et[0]}
	}
	c.Set(ctxKey, a)
	return nil
}

// WrapBody returns a compressing writer for a response ResponseHeaders chose to
// compress, and w itself otherwise.
func (p *Plugin) WrapBody(c *plugin.Context, w plugin.BodyWriter) plugin.BodyWriter {
	v, ok := c.Get(ctxKey)
	if !ok {
		return w
	}
	a, ok := v.(algo)
	if !ok {
		return w
	}
	c.Set(ctxKey, nil)
	return newWriter(a, p.level, w)
}

func (p *Plugin) compressible(h http.Header) bool {
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	mt, _, _ := strings.Cut(ct[0], ";")
	mt = strings.TrimSpace(mt)
	for _, pre := range p.prefixes {
		if len(mt) > len(pre) && strings.EqualFold(mt[:len(pre)], pre) {
			return true
		}
	}
	if p.exact[mt] {
		return true
	}
	return p.exact[strings.ToLower(mt)]
}

func noTransform(h http.Header) bool {
	for _, v := range h["Cache-Control"] {
		if strings.Contains(strings.ToLower(v), "no-transform") {
			return true
		}
	}
	return false
}

// addVary adds Accept-Encoding to Vary unless it is there (or Vary is "*").
func addVary(h http.Header) {
	for _, v := range h["Vary"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Accept-Encoding") {
				return
			}
		}
	}
	if len(h["Vary"]) == 0 {
		h["Vary"] = varyValue
		return
	}
	h["Vary"] = append(h["Vary"], "Accept-Encoding")
}

func bodyAllowed(method string, status int) bool {
	return method != http.MethodHead && status >= 200 && status != http.StatusNoContent &&
		status != http.StatusNotModified
}

// negotiate picks the algorithm the client accepts with the highest q-value, the
// earliest in prefs on ties. Codings not listed get the q of "*" if present, else 0
// (RFC 9110 §12.5.3). ok is false when identity is the answer.
func negotiate(values []string, prefs []algo) (best algo, ok bool) {
	var q [numAlgos]float64
	var listed [numAlgos]bool
	star := 0.0
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.TrimSpace(name)
			qv := 1.0
			for param := range strings.SplitSeq(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(param), "=")
				if k == "q" || k == "Q" {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0
					}
					qv = f
				}
			}
			switch {
			case name == "*":
				star = qv
			case strings.EqualFold(name, "br"):
				q[algoBrotli], listed[algoBrotli] = qv, true
			case strings.EqualFold(name, "zstd"):
				q[algoZstd], listed[algoZstd] = qv, true
			case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
				q[algoGzip], listed[algoGzip] = qv, true
			}
		}
	}
	bestQ := 0.0
	for _, a := range prefs {
		v := star
		if listed[a] {
			v = q[a]
		}
		if v > bestQ {
			best, bestQ, ok = a, v, true
		}
	}
	return best, ok
}

// Package transformer holds two plugins: request-transformer edits the request that
// goes upstream (headers, query parameters, path), response-transformer edits the
// response headers. See README.md for the user manual.
package transformer

import (
	"net/http"
	"net/textproto"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Plugin names.
const (
	RequestName  = "request-transformer"
	ResponseName = "response-transformer"
)

// Headers edits a header map: Remove first, then Set (replacing), then Add (appending).
type Headers struct {
	Set    map[string]string `json:"set,omitempty"`
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// Query edits query parameters: Remove first, then Set.
type Query struct {
	Set    map[string]string `json:"set,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// Path rewrites the path: the first match of Regex (RE2) is replaced by Replacement,
// which may refer to groups as $1 or ${name}.
type Path struct {
	Regex       string `json:"regex"`
	Replacement string `json:"replacement"`
}

// RequestConfig is request-transformer's configuration.
type RequestConfig struct {
	Headers Headers `json:"headers"`
	Query   Query   `json:"query"`
	Path    *Path   `json:"path,omitempty"`
}

// ResponseConfig is response-transformer's configuration.
type ResponseConfig struct {
	Headers Headers `json:"headers"`
}

// Framing headers the data plane owns; editing them would corrupt the message.
var reserved = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Keep-Alive": true}

func (h *Headers) validate(field string) error {
	check := func(f, name string) error {
		if !pluginutil.ValidHeaderName(name) {
			return &plugin.FieldError{Field: f, Message: "not a header name"}
		}
		if reserved[textproto.CanonicalMIMEHeaderKey(name)] {
			return &plugin.FieldError{Field: f, Message: "framing headers cannot be changed"}
		}
		return nil
	}
	for i, n := range h.Remove {
		if err := check(field+".remove["+strconv.Itoa(i)+"]", n); err != nil {
			return err
		}
	}
	for _, m := range []struct {
		f string
		m map[string]string
	}{{field + ".set", h.Set}, {field + ".add", h.Add}} {
		for n, v := range m.m {
			if err := check(m.f+"."+n, n); err != nil {
				return err
			}
			if !validValue(v) {
				return &plugin.FieldError{Field: m.f + "." + n, Message: "value has control characters (CR, LF, NUL)"}
			}
		}
	}
	return nil
}

// validValue rejects control characters other than tab, which would split or corrupt
// the header block.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Validate checks request-transformer's config; errors name the field.
func (c *RequestConfig) Validate() error {
	if err := c.Headers.validate("headers"); err != nil {
		return err
	}
	for i, n := range c.Query.Remove {
		if n == "" {
			return &plugin.FieldError{Field: "query.remove[" + strconv.Itoa(i) + "]", Message: "empty name"}
		}
	}
	for n := range c.Query.Set {
		if n == "" {
			return &plugin.FieldError{Field: "query.set", Message: "empty name"}
		}
	}
	if c.Path != nil {
		re, err := regexp.Compile(c.Path.Regex)
		if err != nil || c.Path.Regex == "" {
			return &plugin.FieldError{Field: "path.regex", Message: "not a valid RE2 expression"}
		}
		if err := checkTemplate(re, c.Path.Replacement); err != nil {
			return &plugin.FieldError{Field: "path.replacement", Message: err.Error()}
		}
	}
	return nil
}

// Validate checks response-transformer's config.
func (c *ResponseConfig) Validate() error { return c.Headers.validate("headers") }

type templateError string

func (e templateError) Error() string { return string(e) }

// checkTemplate verifies that every $n / ${name} in tmpl names a group of re.
func checkTemplate(re *regexp.Regexp, tmpl string) error {
	if !validValue(tmpl) {
		return templateError("has control characters")
	}
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '$' || i+1 == len(tmpl) {
			continue
		}
		i++
		if tmpl[i] == '$' {
			continue
		}
		var name string
		if tmpl[i] == '{' {
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return templateError("unclosed ${")
			}
			name, i = tmpl[i+1:i+end], i+end
		} else {
			j := i
			for j < len(tmpl) && (tmpl[j] == '_' || tmpl[j] >= '0' && tmpl[j] <= '9' ||
				tmpl[j] >= 'a' && tmpl[j] <= 'z' || tmpl[j] >= 'A' && tmpl[j] <= 'Z') {
				j++
			}
			name, i = tmpl[i:j], j-1
		}
		if n, err := strconv.Atoi(name); err == nil {
			if n > re.NumSubexp() {
				return templateError("$" + name + ": the regex has " + strconv.Itoa(re.NumSubexp()) + " groups")
			}
		} else if re.SubexpIndex(name) < 0 {
			return templateError("$" + name + ": no such group")
		}
	}
	return nil
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      RequestName,
		NewConfig: func() any { return &RequestConfig{} },
		New:       func(cfg any, _ *plugin.Env) (any, error) { return NewRequest(cfg.(*RequestConfig)), nil },
	})
	plugin.Register(&plugin.Definition{
		Name:      ResponseName,
		NewConfig: func() any { return &ResponseConfig{} },
		New:       func(cfg any, _ *plugin.Env) (any, error) { return NewResponse(cfg.(*ResponseConfig)), nil },
	})
}

type kv struct{ name, value string }

// headerOps is a compiled Headers: canonical names, sorted for a stable order.
type headerOps struct {
	remove   []string
	set, add []kv
	host     *string // a set of "Host" (requests only)
}

func compileHeaders(h Headers, request bool) headerOps {
	var ops headerOps
	for _, n := range h.Remove {
		ops.remove = append(ops.remove, textproto.CanonicalMIMEHeaderKey(n))
	}
	list := func(m map[string]string) []kv {
		var out []kv
		for n, v := range m {
			n = textproto.CanonicalMIMEHeaderKey(n)
			if request && n == "Host" {
				ops.host = &v
				continue
			}
			out = append(out, kv{n, v})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
		return out
	}
	ops.set, ops.add = list(h.Set), list(h.Add)
	return ops
}

func (o *headerOps) apply(h http.Header) {
	for _, n := range o.remove {
		delete(h, n)
	}
	for _, e := range o.set {
		h[e.name] = []string{e.value}
	}
	for _, e := range o.add {
		h[e.name] = append(h[e.name], e.value)
	}
}

// Request is one configured request-transformer instance.
type Request struct {
	headers  headerOps
	qRemove  []string
	qSet     []kv
	re       *regexp.Regexp
	template string
}

// NewRequest prepares an instance from a validated config.
func NewRequest(cfg *RequestConfig) *Request {
	p := &Request{headers: compileHeaders(cfg.Headers, true), qRemove: cfg.Query.Remove}
	for n, v := range cfg.Query.Set {
		p.qSet = append(p.qSet, kv{n, v})
	}
	sort.Slice(p.qSet, func(i, j int) bool { return p.qSet[i].name < p.qSet[j].name })
	if cfg.Path != nil {
		p.re, p.template = regexp.MustCompile(cfg.Path.Regex), cfg.Path.Replacement
	}
	return p
}

// UpstreamRequest edits the request about to go upstream.
func (p *Request) UpstreamRequest(c *plugin.Context) error {
	r := c.Request
	p.headers.apply(r.Header)
	if p.headers.host != nil {
		r.Host = *p.headers.host
	}
	if len(p.qRemove) > 0 || len(p.qSet) > 0 {
		q := r.URL.Query()
		for _, n := range p.qRemove {
			q.Del(n)
		}
		for _, e := range p.qSet {
			q.Set(e.name, e.value)
		}
		r.URL.RawQuery = q.Encode()
	}
	if p.re != nil {
		path := r.URL.Path
		if m := p.re.FindStringSubmatchIndex(path); m != nil {
			out := p.re.ExpandString(nil, p.template, path, m)
			np := path[:m[0]] + string(out) + path[m[1]:]
			if !strings.HasPrefix(np, "/") {
				np = "/" + np
			}
			r.URL.Path, r.URL.RawPath = np, ""
		}
	}
	return nil
}

// Response is one configured response-transformer instance.
type Response struct{ headers headerOps }

// NewResponse prepares an instance from a validated config.
func NewResponse(cfg *ResponseConfig) *Response {
	return &Response{headers: compileHeaders(cfg.Headers, false)}
}

// ResponseHeaders edits the response headers about to be sent.
func (p *Response) ResponseHeaders(c *plugin.Context) error {
	if c.Header != nil {
		p.headers.apply(c.Header)
	}
	return nil
}

// Package cors is the cors plugin: it answers CORS preflight requests locally and adds
// the CORS response headers for allowed origins. See README.md for the user manual.
package cors

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Name is the plugin's configuration name.
const Name = "cors"

// Config is the plugin's configuration.
type Config struct {
	// AllowOrigins lists exact origins ("https://app.example.com") or "*" for any.
	AllowOrigins []string `json:"allowOrigins"`
	// AllowMethods lists methods a preflight may ask for (default GET, HEAD, POST, PUT,
	// PATCH, DELETE).
	AllowMethods []string `json:"allowMethods,omitempty"`
	// AllowHeaders lists request headers a preflight may ask for; empty allows the
	// headers the browser asks for.
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// ExposeHeaders lists response headers scripts may read.
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// AllowCredentials lets browsers send cookies and credentials.
	AllowCredentials bool `json:"allowCredentials,omitempty"`
	// MaxAge is how long browsers may cache a preflight answer (0: not sent).
	MaxAge pluginutil.Duration `json:"maxAge,omitempty"`
}

var defaultMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// Validate checks the config. Errors name the field ("allowOrigins[1]").
func (c *Config) Validate() error {
	if len(c.AllowOrigins) == 0 {
		return &plugin.FieldError{Field: "allowOrigins", Message: "list at least one origin, or \"*\""}
	}
	for i, o := range c.AllowOrigins {
		f := "allowOrigins[" + strconv.Itoa(i) + "]"
		if o == "*" {
			if c.AllowCredentials {
				return &plugin.FieldError{Field: f, Message: "\"*\" cannot be combined with allowCredentials: list the origins"}
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
			return &plugin.FieldError{Field: f, Message: "must be \"*\" or an origin such as https://app.example.com"}
		}
	}
	for i, m := range c.AllowMethods {
		if !pluginutil.ValidHeaderName(m) {
			return &plugin.FieldError{Field: "allowMethods[" + strconv.Itoa(i) + "]", Message: "not a method name"}
		}
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"allowHeaders", c.AllowHeaders}, {"exposeHeaders", c.ExposeHeaders}} {
		for i, h := range l.list {
			if !pluginutil.ValidHeaderName(h) {
				return &plugin.FieldError{Field: l.field + "[" + strconv.Itoa(i) + "]", Message: "not a header name"}
			}
		}
	}
	if c.MaxAge < 0 {
		return &plugin.FieldError{Field: "maxAge", Message: "must not be negative"}
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

// Plugin is one configured cors instance. Header values are prepared once.
type Plugin struct {
	any         bool
	origins     map[string]bool
	credentials bool
	methods     map[string]bool
	headers     map[string]bool // lower-case; nil: allow what is asked
	allowMeth   string
	allowHdrs   string
	expose      string
	maxAge      string
}

// New prepares an instance from a validated config.
func New(cfg *Config) *Plugin {
	p := &Plugin{origins: map[string]bool{}, methods: map[string]bool{}, credentials: cfg.AllowCredentials}
	for _, o := range cfg.AllowOrigins {
		if o == "*" {
			p.any = true
		} else {
			p.origins[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
		}
	}
	src := cfg.AllowMethods
	if len(src) == 0 {
		src = defaultMethods
	}
	methods := make([]string, len(src))
	for i, m := range src {
		methods[i] = strings.ToUpper(m)
		p.methods[methods[i]] = true
	}
	p.allowMeth = strings.Join(methods, ", ")
	if len(cfg.AllowHeaders) > 0 {
		p.headers = map[string]bool{}
		for _, h := range cfg.AllowHeaders {
			p.headers[strings.ToLower(h)] = true
		}
		p.allowHdrs = strings.Join(cfg.AllowHeaders, ", ")
	}
	p.expose = strings.Join(cfg.ExposeHeaders, ", ")
	if d := time.Duration(cfg.MaxAge); d > 0 {
		p.maxAge = strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
	}
	return p
}

const ctxPreflight = "cors.preflight"

// Access answers preflight requests (OPTIONS with Origin and
// Access-Control-Request-Method) locally with 204. The CORS headers are present only
// when the origin, the method and the headers asked for are all allowed.
func (p *Plugin) Access(c *plugin.Context) error {
	r := c.Request
	if r == nil || r.Method != http.MethodOptions {
		return nil
	}
	origin, reqMethod := first(r.Header, "Origin"), first(r.Header, "Access-Control-Request-Method")
	if origin == "" || reqMethod == "" {
		return nil
	}
	c.Set(ctxPreflight, true)
	h := http.Header{"Vary": {"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}}
	reqHeaders := strings.Join(r.Header.Values("Access-Control-Request-Headers"), ",")
	if p.originAllowed(origin) && p.methods[strings.ToUpper(reqMethod)] && p.headersAllowed(reqHeaders) {
		p.setOrigin(h, origin)
		h.Set("Access-Control-Allow-Methods", p.allowMeth)
		switch {
		case p.allowHdrs != "":
			h.Set("Access-Control-Allow-Headers", p.allowHdrs)
		case strings.TrimSpace(reqHeaders) != "":
			h.Set("Access-Control-Allow-Headers", reqHeaders)
		}
		if p.maxAge != "" {
			h.Set("Access-Control-Max-Age", p.maxAge)
		}
	}
	return &plugin.Reply{Status: http.StatusNoContent, Header: h}
}

// ResponseHeaders adds Access-Control-Allow-Origin (and credentials, exposed headers)
// for an allowed origin; a disallowed origin gets none, so the browser blocks it.
func (p *Plugin) ResponseHeaders(c *plugin.Context) error {
	if pre, _ := c.Get(ctxPreflight); pre == true || c.Header == nil || c.Request == nil {
		return nil
	}
	if !p.any || p.credentials {
		// The answer depends on Origin: caches must keep one per origin.
		c.Header.Add("Vary", "Origin")
	}
	origin := first(c.Request.Header, "Origin")
	if origin == "" || !p.originAllowed(origin) {
		return nil
	}
	p.setOrigin(c.Header, origin)
	if p.expose != "" {
		c.Header.Set("Access-Control-Expose-Headers", p.expose)
	}
	return nil
}

func (p *Plugin) setOrigin(h http.Header, origin string) {
	if p.any && !p.credentials && len(p.origins) == 0 {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

func (p *Plugin) originAllowed(origin string) bool {
	return p.any || p.origins[strings.ToLower(origin)]
}

// headersAllowed checks a comma-separated Access-Control-Request-Headers value.
func (p *Plugin) headersAllowed(list string) bool {
	if p.headers == nil {
		return true
	}
	for h := range strings.SplitSeq(list, ",") {
		if h = strings.TrimSpace(h); h != "" && !p.headers[strings.ToLower(h)] {
			return false
		}
	}
	return true
}

func first(h http.Header, canonical string) string {
	if v := h[textproto.CanonicalMIMEHeaderKey(canonical)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

package plugin

import (
	"bytes"
	"net/http"
)

// Context is one request as plugins see it. The data plane pools it; plugins must not
// keep it after the request.
type Context struct {
	Request  *http.Request
	ClientIP string
	Gateway  string
	Route    string
	// Consumer is set by an authentication plugin (nil: anonymous).
	Consumer *Consumer

	// Status and Header are the response's, valid from PhaseResponseHeaders on.
	Status int
	Header http.Header

	vars map[string]any
}

// Set stores a value for later plugins of the same request.
func (c *Context) Set(key string, v any) {
	if c.vars == nil {
		c.vars = make(map[string]any, 4)
	}
	c.vars[key] = v
}

// Get returns a value stored with Set.
func (c *Context) Get(key string) (any, bool) {
	v, ok := c.vars[key]
	return v, ok
}

// Reset clears the context for reuse.
func (c *Context) Reset() {
	clear(c.vars)
	*c = Context{vars: c.vars}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

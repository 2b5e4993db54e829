// Package bodysize is the body-size plugin: it refuses request bodies larger than a
// configured number of bytes with 413. See README.md for the user manual.
package bodysize

import (
	"io"
	"net/http"
	"strconv"

	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's configuration name.
const Name = "body-size"

// Config is the plugin's configuration.
type Config struct {
	// Max is the largest accepted request body, in bytes (> 0).
	Max int64 `json:"max"`
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Max <= 0 {
		return &plugin.FieldError{Field: "max", Message: "must be a positive number of bytes"}
	}
	return nil
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, _ *plugin.Env) (any, error) { return &Plugin{max: cfg.(*Config).Max}, nil },
	})
}

// Plugin is one configured body-size instance.
type Plugin struct{ max int64 }

// Access answers 413 when the declared Content-Length is over the limit. A body of
// unknown length (chunked, HTTP/2 without content-length) is wrapped so that reading
// more than the limit fails with *http.MaxBytesError; the data plane recognises that
// error (errors.As) and answers 413 if nothing was sent to the client yet.
func (p *Plugin) Access(c *plugin.Context) error {
	r := c.Request
	if r == nil || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength > p.max {
		return TooLarge(p.max)
	}
	if r.ContentLength < 0 {
		r.Body = &limitedBody{rc: r.Body, left: p.max, max: p.max}
	}
	return nil
}

// TooLarge is the plugin's 413 reply; the data plane may use it when a wrapped body
// fails with *http.MaxBytesError.
func TooLarge(max int64) *plugin.Reply {
	return plugin.JSONError(http.StatusRequestEntityTooLarge, "body_too_large",
		"request body is larger than "+strconv.FormatInt(max, 10)+" bytes")
}

// limitedBody reads at most max bytes from rc; one byte more is an error.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	max  int64
	err  error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Ask for one byte more than allowed so an over-long body is detected at once.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		b.err = &http.MaxBytesError{Limit: b.max}
		return n, b.err
	}
	b.left -= int64(n)
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

package ratelimit

import (
	"math"
	"time"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Config is the rate-limit plugin's configuration.
type Config struct {
	// Requests is how many requests a key may make per Window (> 0).
	Requests int64 `json:"requests"`
	// Window is the period Requests refers to (Go duration, at least 1s).
	Window pluginutil.Duration `json:"window"`
	// Key is what requests are counted by: consumer, ip (default), header or route.
	Key string `json:"key,omitempty"`
	// Header names the request header whose value is the key when Key is "header".
	Header string `json:"header,omitempty"`
	// Burst is the bucket size: how many requests may arrive at once after a quiet
	// period. 0 means Requests.
	Burst int64 `json:"burst,omitempty"`

	kind pluginutil.KeyKind
}

const (
	maxRequests = 1 << 30
	maxWindow   = 31 * 24 * time.Hour
)

// Validate checks the config and fills defaults. Errors name the field.
func (c *Config) Validate() error {
	if c.Requests <= 0 || c.Requests > maxRequests {
		return &plugin.FieldError{Field: "requests", Message: "must be between 1 and 1073741824"}
	}
	w := time.Duration(c.Window)
	if w < time.Second || w > maxWindow {
		return &plugin.FieldError{Field: "window", Message: "must be a duration between 1s and 744h"}
	}
	k, ok := pluginutil.ParseKeyKind(c.Key, pluginutil.KeyIP)
	if !ok {
		return &plugin.FieldError{Field: "key", Message: "must be " + pluginutil.KeyNames}
	}
	c.kind = k
	if k == pluginutil.KeyHeader && !pluginutil.ValidHeaderName(c.Header) {
		return &plugin.FieldError{Field: "header", Message: "a valid header name is required when key is header"}
	}
	if k != pluginutil.KeyHeader && c.Header != "" {
		return &plugin.FieldError{Field: "header", Message: "only allowed when key is header"}
	}
	if c.Burst < 0 || c.Burst > maxRequests {
		return &plugin.FieldError{Field: "burst", Message: "must be between 1 and 1073741824 (or omitted)"}
	}
	// The bucket depth in nanoseconds must fit an int64 with room to spare.
	if float64(w)/float64(c.Requests)*float64(c.capacity()) > math.MaxInt64/4 {
		return &plugin.FieldError{Field: "burst", Message: "burst × window / requests is too large"}
	}
	return nil
}

// capacity is the bucket size.
func (c *Config) capacity() int64 {
	if c.Burst > 0 {
		return c.Burst
	}
	return c.Requests
}

// Policy is a validated limit, as backends see it.
type Policy struct {
	// Requests per Window is the refill rate.
	Requests int64
	Window   time.Duration
	// Burst is the bucket size (≥ 1).
	Burst int64
}

func (c *Config) policy() Policy {
	return Policy{Requests: c.Requests, Window: time.Duration(c.Window), Burst: c.capacity()}
}

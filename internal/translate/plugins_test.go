package translate

import (
	"errors"
	"time"

	"portico.dev/portico/internal/plugin"
	_ "portico.dev/portico/internal/plugins/all" // the built-in plugins, for golden cases that use them
)

// Test plugins, so golden cases do not depend on the built-ins' schemas.
// test-limit: {requests (> 0, required), window (Go duration), key}.
// test-auth: {header, hideCredentials}; header must not contain spaces.
type testLimitConfig struct {
	Requests int    `json:"requests"`
	Window   string `json:"window,omitempty"`
	Key      string `json:"key,omitempty"`
}

func (c *testLimitConfig) Validate() error {
	if c.Requests <= 0 {
		return &plugin.FieldError{Field: "requests", Message: "must be > 0"}
	}
	if c.Window != "" {
		if _, err := time.ParseDuration(c.Window); err != nil {
			return &plugin.FieldError{Field: "window", Message: "must be a duration such as 1m"}
		}
	}
	return nil
}

type testAuthConfig struct {
	Header          string `json:"header,omitempty"`
	HideCredentials bool   `json:"hideCredentials,omitempty"`
}

func (c *testAuthConfig) Validate() error {
	for _, r := range c.Header {
		if r == ' ' {
			return errors.New("header: must not contain spaces")
		}
	}
	return nil
}

func init() {
	newInstance := func(any, *plugin.Env) (any, error) { return struct{}{}, nil }
	plugin.Register(&plugin.Definition{Name: "test-limit", NewConfig: func() any { return &testLimitConfig{} }, New: newInstance})
	plugin.Register(&plugin.Definition{Name: "test-auth", NewConfig: func() any { return &testAuthConfig{} }, New: newInstance})
	plugin.Register(&plugin.Definition{Name: "test-echo", NewConfig: func() any { return &map[string]any{} }, New: newInstance})
}

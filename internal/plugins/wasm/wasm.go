// Package wasm is the wasm plugin: it runs WebAssembly plugins written against the
// proxy-wasm ABI (the one Envoy and Higress use) with the wazero runtime. See README.md
// for the user manual and the list of implemented ABI functions.
package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"

	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's name in configuration.
const Name = "wasm"

// Defaults.
const (
	DefaultPoolSize     = 8
	DefaultMaxBodyBytes = 1 << 20
)

// Config is the plugin's configuration.
type Config struct {
	// Module is the .wasm module itself (base64 in JSON).
	Module []byte `json:"module,omitempty"`
	// Path is a .wasm file, read when the plugin is built (in the data plane).
	Path string `json:"path,omitempty"`
	// Config is passed to proxy_on_configure: a JSON string is passed as its value,
	// any other JSON value as its JSON text.
	Config json.RawMessage `json:"config,omitempty"`
	// VMConfig is passed to proxy_on_vm_start, like Config.
	VMConfig json.RawMessage `json:"vmConfig,omitempty"`
	// RootID is the plugin_root_id property; default "".
	RootID string `json:"rootId,omitempty"`
	// PoolSize is the number of module instances (each serves one request at a time);
	// default 8.
	PoolSize int `json:"poolSize,omitempty"`
	// RequestBody buffers request bodies (up to MaxBodyBytes) for proxy_on_request_body.
	RequestBody bool `json:"requestBody,omitempty"`
	// ResponseBody buffers response bodies (up to MaxBodyBytes) for
	// proxy_on_response_body.
	ResponseBody bool `json:"responseBody,omitempty"`
	// MaxBodyBytes bounds a buffered body: a larger request body gets 413, a larger
	// response body passes unfiltered. Default 1 MiB.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// FailOpen lets requests through when the module traps, instead of a 500.
	FailOpen bool `json:"failOpen,omitempty"`
}

// Validate checks the fields without any I/O (translation must stay pure).
func (c *Config) Validate() error {
	switch {
	case len(c.Module) == 0 && c.Path == "":
		return &plugin.FieldError{Field: "module", Message: "module or path is required"}
	case len(c.Module) > 0 && c.Path != "":
		return &plugin.FieldError{Field: "path", Message: "set module or path, not both"}
	case len(c.Module) > 0 && !bytes.HasPrefix(c.Module, []byte("\x00asm")):
		return &plugin.FieldError{Field: "module", Message: "not a WebAssembly binary"}
	case c.PoolSize < 0 || c.PoolSize > 1024:
		return &plugin.FieldError{Field: "poolSize", Message: "must be between 1 and 1024"}
	case c.MaxBodyBytes < 0:
		return &plugin.FieldError{Field: "maxBodyBytes", Message: "must not be negative"}
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"config", c.Config}, {"vmConfig", c.VMConfig}} {
		if _, err := configBytes(f.raw); err != nil {
			return &plugin.FieldError{Field: f.name, Message: err.Error()}
		}
	}
	return nil
}

// configBytes turns a config value into the bytes the module reads.
func configBytes(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New: func(cfg any, env *plugin.Env) (any, error) {
			p, err := New(cfg.(*Config), env)
			if err != nil || !p.cfg.ResponseBody {
				return p, err
			}
			return withResponseBody{p}, nil
		},
	})
}

// Wasm is one configured instance: a pool of module instances configured alike. It is
// safe for concurrent use; Close releases the instances.
type Wasm struct {
	name, rootID           string
	vmConfig, pluginConfig []byte
	cfg                    Config
	eng                    *engine
	pool                   *pool
	log                    *slog.Logger
	hold                   bool // the response phases use the vm: keep it until Log
}

// ctxKey is where a request's vm waits for the response phases (plugin.Context.Set).
const ctxKey = "wasm.vm"

// New loads (Path) and compiles the module (once per distinct module bytes, shared
// across snapshots), and creates and configures a first instance so a module that
// rejects its configuration fails here, not on a request.
func New(cfg *Config, env *plugin.Env) (*Wasm, error) {
	code := cfg.Module
	if cfg.Path != "" {
		b, err := os.ReadFile(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
		code = b
	}
	p := &Wasm{name: Name, rootID: cfg.RootID, cfg: *cfg, log: slog.Default()}
	if env != nil && env.Logger != nil {
		p.log = env.Logger
	}
	p.vmConfig, _ = configBytes(cfg.VMConfig)
	p.pluginConfig, _ = configBytes(cfg.Config)
	if p.cfg.PoolSize == 0 {
		p.cfg.PoolSize = DefaultPoolSize
	}
	if p.cfg.MaxBodyBytes == 0 {
		p.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	eng, err := acquireEngine(code)
	if err != nil {
		return nil, err
	}
	p.eng = eng
	p.pool = newPool(p.cfg.PoolSize, p.newVM)
	v, err := p.pool.get(context.Background())
	if err != nil {
		eng.release()
		return nil, err
	}
	p.hold = v.fn[exResponseHeaders] != nil || v.fn[exLog] != nil || (cfg.ResponseBody && v.fn[exResponseBody] != nil)
	p.pool.put(v)
	return p, nil
}

// Access runs proxy_on_request_headers (and proxy_on_request_body when configured).
func (p *Wasm) Access(c *plugin.Context) error {
	v, err := p.pool.get(c.Request.Context())
	if err != nil {
		if c.Request.Context().Err() != nil {
			return plugin.JSONError(http.StatusServiceUnavailable, "wasm_unavailable", "no plugin instance available")
		}
		return p.failure(err) // a new instance could not be created
	}
	err = p.request(v, c)
	if v.reply != nil || err != nil || !p.hold {
		rep := v.reply
		err = errors.Join(err, v.end())
		p.pool.put(v)
		if rep != nil {
			return rep
		}
		return p.failure(err)
	}
	c.Set(ctxKey, v)
	return nil
}

func (p *Wasm) request(v *vm, c *plugin.Context) error {
	if err := v.begin(c); err != nil {
		return err
	}
	r := c.Request
	hasBody := p.cfg.RequestBody && v.fn[exRequestBody] != nil && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	eos := uint64(1)
	if hasBody {
		eos = 0
	}
	if _, err := v.call(exRequestHeaders, uint64(v.id), uint64(len(r.Header)+4), eos); err != nil || v.reply != nil || !hasBody {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, p.cfg.MaxBodyBytes+1))
	if err != nil {
		v.reply = plugin.JSONError(http.StatusBadRequest, "bad_request", "cannot read the request body")
		return nil
	}
	if int64(len(body)) > p.cfg.MaxBodyBytes {
		v.reply = plugin.JSONError(http.StatusRequestEntityTooLarge, "body_too_large", "request body too large for the wasm plugin")
		return nil
	}
	v.body = body
	if _, err := v.call(exRequestBody, uint64(v.id), uint64(len(body)), 1); err != nil || v.reply != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(v.body))
	r.ContentLength = int64(len(v.body))
	if r.Header.Get("Content-Length") != "" {
		r.Header.Set("Content-Length", strconv.Itoa(len(v.body)))
	}
	return nil
}

// ResponseHeaders runs proxy_on_response_headers for the request's http context.
func (p *Wasm) ResponseHeaders(c *plugin.Context) error {
	v := held(c)
	if v == nil {
		return nil
	}
	v.c = c
	if _, err := v.call(exResponseHeaders, uint64(v.id), uint64(len(c.Header)+1), 0); err != nil {
		return p.failure(err)
	}
	if rep := v.reply; rep != nil {
		v.reply = nil
		return rep
	}
	return nil
}

// Log finishes the request's http context (proxy_on_log, proxy_on_done,
// proxy_on_delete) and returns the instance to the pool.
func (p *Wasm) Log(c *plugin.Context) {
	v := held(c)
	if v == nil {
		return
	}
	c.Set(ctxKey, nil)
	v.c = c
	if err := v.end(); err != nil {
		p.log.Error("wasm plugin failed", "plugin", p.name, "error", err)
	}
	p.pool.put(v)
}

func held(c *plugin.Context) *vm {
	x, _ := c.Get(ctxKey)
	v, _ := x.(*vm)
	return v
}

// failure turns a module error into the handler's result (nil when failing open).
func (p *Wasm) failure(err error) error {
	if err == nil {
		return nil
	}
	if p.cfg.FailOpen {
		p.log.Warn("wasm plugin failed; failing open", "plugin", p.name, "error", err)
		return nil
	}
	return err
}

// Close closes the instances and releases the compiled module.
func (p *Wasm) Close() error {
	p.pool.close()
	p.eng.release()
	return nil
}

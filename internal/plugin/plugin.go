// Package plugin is Portico's plugin framework: plugins register a definition (name,
// config type, constructor), instances are built once per config snapshot, and on each
// request the data plane runs them phase by phase in the one order written in order.go.
//
// A plugin instance implements one or more phase interfaces (RewriteHandler,
// AccessHandler, …). Handlers return errors: returning a *Reply answers the client
// locally and stops the chain; any other error is a 500 (logged with the plugin's name).
package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
)

// Phase is a point in a request's life. Phases run in this order.
type Phase int

// Phases.
const (
	// PhaseRewrite adjusts the request before access checks (request id, redirects).
	PhaseRewrite Phase = iota
	// PhaseAccess authenticates, authorises and limits; it may answer locally.
	PhaseAccess
	// PhaseUpstreamRequest makes last edits to the request before it goes upstream.
	PhaseUpstreamRequest
	// PhaseResponseHeaders edits the response status and headers before they are sent.
	PhaseResponseHeaders
	// PhaseResponseBody wraps the response body writer (compression).
	PhaseResponseBody
	// PhaseLog runs after the response was sent.
	PhaseLog
	numPhases
)

var phaseNames = [...]string{"rewrite", "access", "upstream-request", "response-headers", "response-body", "log"}

// String returns the phase's documented name.
func (p Phase) String() string {
	if p >= 0 && p < numPhases {
		return phaseNames[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// Phase interfaces. An instance implements those of the phases it runs in.
type (
	// RewriteHandler runs in PhaseRewrite.
	RewriteHandler interface{ Rewrite(c *Context) error }
	// AccessHandler runs in PhaseAccess.
	AccessHandler interface{ Access(c *Context) error }
	// UpstreamRequestHandler runs in PhaseUpstreamRequest.
	UpstreamRequestHandler interface{ UpstreamRequest(c *Context) error }
	// ResponseHeadersHandler runs in PhaseResponseHeaders with the status and headers
	// about to be sent (it may change both through c).
	ResponseHeadersHandler interface{ ResponseHeaders(c *Context) error }
	// ResponseBodyHandler wraps the writer the response body goes through.
	ResponseBodyHandler interface {
		WrapBody(c *Context, w BodyWriter) BodyWriter
	}
	// LogHandler runs after the response was sent; it cannot change anything.
	LogHandler interface{ Log(c *Context) }
	// Closer releases what an instance holds (timers, connections) when its snapshot
	// is retired.
	Closer interface{ Close() error }
)

// BodyWriter is where response body bytes go; Close is called once at the end.
type BodyWriter interface {
	Write(p []byte) (int, error)
	Flush() error
	Close() error
}

// Reply is a local response. Returned as an error from a handler, it stops the chain.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Error implements error.
func (r *Reply) Error() string { return "plugin reply " + strconv.Itoa(r.Status) }

// JSONError builds a local reply with Portico's JSON error envelope.
func JSONError(status int, code, message string) *Reply {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": message}})
	return &Reply{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
}

// Definition describes a plugin type. Built-ins register theirs from init().
type Definition struct {
	// Name is the plugin's name in configuration ("key-auth").
	Name string
	// NewConfig returns a pointer to a zero config; configuration JSON is decoded into it
	// strictly (unknown fields are errors). Config types may implement Validator.
	NewConfig func() any
	// New builds an instance from a decoded, validated config. It runs once per snapshot,
	// never per request.
	New func(cfg any, env *Env) (any, error)
	// After (custom plugins only) names the built-in this plugin runs right after, e.g.
	// "jwt-auth" for a custom authentication plugin that acl should see; empty: after
	// every built-in. Built-ins take their place from Order and leave it empty.
	After string
	// Priority orders plugins anchored at the same place: higher runs first.
	Priority int
}

// Validator is implemented by config types that check themselves; errors should name
// the field (FieldError).
type Validator interface{ Validate() error }

// FieldError is a config problem at a field path inside the plugin's config.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Env is what instances may use beyond their config.
type Env struct {
	Logger *slog.Logger
	// Consumers is the snapshot's consumer set (for authentication plugins).
	Consumers *Consumers
	// Shared holds per-process resources shared by instances across snapshots
	// (e.g. Redis clients, rate-limit counters), keyed by the plugin's choice.
	Shared *Shared
}

var (
	registryMu sync.RWMutex
	registry   = map[string]*Definition{}
)

// Register adds a plugin definition. A name may be registered once; built-ins appear in
// Order (order.go); custom plugins place themselves with After and Priority (see Rank).
func Register(d *Definition) {
	if d.Name == "" || d.NewConfig == nil || d.New == nil {
		panic("plugin: incomplete definition " + d.Name)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[d.Name]; dup {
		panic("plugin: " + d.Name + " registered twice")
	}
	if d.After != "" {
		_, builtin := rankOf[d.Name]
		_, anchor := rankOf[d.After]
		if builtin || !anchor {
			panic("plugin: " + d.Name + ": After must name a built-in, and only custom plugins set it")
		}
	}
	registry[d.Name] = d
}

// Lookup returns a registered definition.
func Lookup(name string) (*Definition, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	d, ok := registry[name]
	return d, ok
}

// Names lists registered plugins in run order.
func Names() []string {
	registryMu.RLock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	registryMu.RUnlock()
	sort.Slice(names, func(i, j int) bool { return Less(names[i], names[j]) })
	return names
}

// DecodeConfig decodes raw JSON (nil or empty means {}) into the plugin's config type,
// strictly, and validates it. Translation calls it, so config mistakes become statuses
// before anything reaches a data plane.
func DecodeConfig(name string, raw json.RawMessage) (any, error) {
	d, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown plugin %q", name)
	}
	cfg := d.NewConfig()
	if len(raw) > 0 && string(raw) != "null" {
		dec := json.NewDecoder(bytesReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(cfg); err != nil {
			return nil, err
		}
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// ErrNoPhase is returned by Build for an instance that implements no phase interface.
var ErrNoPhase = errors.New("plugin implements no phase")

// Package admin is Portico's admin REST API: CRUD and apply of objects over the store,
// dry runs through translation, history and rollback, API tokens with roles and scopes,
// an audit log, and the OpenAPI document.
//
// Handlers return errors; one writer renders every error as the envelope
// {"error":{"code","message","field","object","details"}}. Middleware composes around
// them: authentication, role and scope checks, a body limit, auditing and metrics.
// A request that fails never changes stored state.
package admin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
	"portico.dev/portico/internal/translate"
)

// DefaultMaxBodyBytes bounds a request body unless Options.MaxBodyBytes says otherwise.
const DefaultMaxBodyBytes = 8 << 20

// Options configure the admin API.
type Options struct {
	Store store.Store
	// AdminToken is the bootstrap admin token (admin role, all scopes); empty disables it.
	AdminToken string
	// Current, when set, returns every stored object once it reflects at least store
	// revision rev (the control plane's mirror), or false if it does not in time; writes
	// then check scopes, versions and references against it instead of reading the
	// whole store. The objects are shared and never modified.
	Current func(ctx context.Context, rev int64) (*resource.Resources, bool)
	// Statuses returns the current statuses of stored objects; may be nil.
	Statuses func() translate.Statuses
	// DataPlanes returns the items of GET /api/v1/dataplanes; may be nil (an empty list).
	DataPlanes func() any
	// Registry receives the request metrics; may be nil.
	Registry prometheus.Registerer
	// Gatherer serves /metrics; may be nil.
	Gatherer prometheus.Gatherer
	// Ready answers /readyz; nil means "the store is reachable".
	Ready func() bool
	// MaxBodyBytes bounds request bodies (default 8 MiB); larger ones get 413.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// server is the admin API handler.
type server struct {
	opts      Options
	adminHash []byte
	kinds     map[string]string // path segment → kind
	metrics   *metrics
	openapi   []byte
}

// New returns the admin API handler.
func New(opts Options) (http.Handler, error) {
	if opts.Store == nil {
		return nil, errors.New("admin: a store is required")
	}
	opts.MaxBodyBytes = cmp.Or(opts.MaxBodyBytes, DefaultMaxBodyBytes)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &server{opts: opts, kinds: map[string]string{}}
	if opts.AdminToken != "" {
		h := sha256.Sum256([]byte(opts.AdminToken))
		s.adminHash = h[:]
	}
	for _, k := range v1alpha1.Kinds {
		s.kinds[Plural(k)] = k
	}
	if opts.Registry != nil {
		m, err := newMetrics(opts.Registry)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	s.openapi = doc
	return s, nil
}

// Plural is a kind's path segment: "Route" → "routes".
func Plural(kind string) string { return strings.ToLower(kind) + "s" }

// request is one API call as handlers see it.
type request struct {
	*http.Request
	ctx context.Context
	p   *principal
	// Path parameters: the kind (canonical) and name, and the namespace query.
	kind, name, namespace string
	// Audit details the handler fills in: the objects involved, the revision written,
	// and a note ("dryRun", "unchanged").
	objects  []string
	revision int64
	note     string
	// statuses caches Options.Statuses for the request.
	statuses translate.Statuses
}

// response is a handler's successful answer, written as JSON.
type response struct {
	status int
	body   any
}

func ok(body any) (*response, error) { return &response{status: http.StatusOK, body: body}, nil }

// handler is an endpoint's implementation.
type handler func(rq *request) (*response, error)

// endpoint is one routed operation.
type endpoint struct {
	// pattern labels metrics ("/api/v1/{kind}/{name}").
	pattern string
	h       handler
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	pattern := s.serve(rec, r)
	if s.metrics != nil {
		s.metrics.observe(r.Method, pattern, rec.status, time.Since(start))
	}
}

// serve handles one request and returns the pattern it matched, for metrics.
func (s *server) serve(w http.ResponseWriter, r *http.Request) string {
	switch r.URL.Path {
	case "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return r.URL.Path
	case "/readyz":
		s.readyz(w, r)
		return r.URL.Path
	case "/metrics":
		s.metricsHandler(w, r)
		return r.URL.Path
	case "/api/v1/openapi.json":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.writeError(w, r, errorf(CodeMethodNotAllowed, "%s is not allowed on %s (allowed: GET)", r.Method, r.URL.Path))
			return r.URL.Path
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapi)
		return r.URL.Path
	}
	if !strings.HasPrefix(r.URL.Path, "/api/v1/") {
		s.writeError(w, r, errorf(CodeNotFound, "no such path %s: the API is under /api/v1/", r.URL.Path))
		return "other"
	}
	rq := &request{Request: r, ctx: r.Context()}
	if ep := s.handle(w, rq); ep != nil {
		return ep.pattern
	}
	return "other"
}

// handle authenticates, routes and runs one API request, then audits it.
func (s *server) handle(w http.ResponseWriter, rq *request) *endpoint {
	// Routing first labels metrics even for refused requests; authentication errors
	// still win over routing errors, so callers without a token learn nothing more.
	ep, routeErr := s.route(rq)
	p, err := s.authenticate(rq.ctx, rq.Request)
	rq.p = p
	var resp *response
	if err == nil {
		err = routeErr
	}
	if err == nil {
		if rq.ContentLength > s.opts.MaxBodyBytes {
			err = tooLarge(s.opts.MaxBodyBytes)
		} else {
			rq.Body = http.MaxBytesReader(w, rq.Body, s.opts.MaxBodyBytes)
			resp, err = ep.h(rq)
		}
	}
	var e *Error
	status := 0
	if err != nil {
		e = asError(err)
		status = e.Status()
	} else {
		status = resp.status
	}
	if audited(rq.Method, status) {
		s.audit(rq, status, e)
	}
	if e != nil {
		s.writeError(w, rq.Request, e)
	} else {
		writeJSON(w, resp.status, resp.body)
	}
	return ep
}

// audited: every write attempt and every denied request is recorded.
func audited(method string, status int) bool {
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return true
	}
	return method != http.MethodGet && method != http.MethodHead
}

func (s *server) audit(rq *request, status int, e *Error) {
	entry := store.AuditEntry{
		Method: rq.Method, Path: rq.URL.RequestURI(), Status: status,
		Objects: rq.objects, Revision: rq.revision, Message: rq.note,
	}
	if rq.p != nil {
		entry.Actor, entry.Role = rq.p.Name, rq.p.Role
	}
	if e != nil {
		entry.Message = e.Code + ": " + e.Message
		if len(entry.Objects) == 0 && e.Object != "" {
			entry.Objects = []string{e.Object}
		}
	}
	// Audit even when the client went away; bounded so a dead database cannot stall us.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rq.ctx), 5*time.Second)
	defer cancel()
	if entry.Revision == 0 {
		if rev, err := s.opts.Store.Revision(ctx); err == nil {
			entry.Revision = rev
		}
	}
	if err := s.opts.Store.AppendAudit(ctx, entry); err != nil {
		s.opts.Logger.Error("admin: audit entry not recorded", "method", entry.Method, "path", entry.Path,
			"status", status, "actor", entry.Actor, "error", err)
	}
}

// writeError renders the envelope; internal causes are logged, never shown.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.cause != nil {
		s.opts.Logger.Error("admin: request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "error", e.cause)
	}
	switch e.Code {
	case CodeUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="portico"`)
	case CodeUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.Status(), map[string]*Error{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<redacted>" stays readable; the type is JSON, never HTML
	if err := enc.Encode(body); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"encoding the response failed"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ready := false
	if s.opts.Ready != nil {
		ready = s.opts.Ready()
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		_, err := s.opts.Store.Revision(ctx)
		ready = err == nil
	}
	if !ready {
		s.writeError(w, r, errorf(CodeUnavailable, "not ready"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"portico.dev/portico/internal/store"
)

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Gateways and Namespaces limit the token; empty means all.
	Gateways   []string `json:"gateways,omitempty"`
	Namespaces []string `json:"namespaces,omitempty"`
	// Expires (RFC 3339) or TTL (a Go duration such as "720h") sets an expiry; neither: never.
	Expires string `json:"expires,omitempty"`
	TTL     string `json:"ttl,omitempty"`
}

// CreatedToken is the answer to POST /api/v1/tokens: the only time the secret is shown.
type CreatedToken struct {
	store.Token
	Secret string `json:"secret"`
}

var tokenName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_.@]*[a-z0-9])?$`)

func (s *server) listTokens(rq *request) (*response, error) {
	if err := rq.p.needRole("manage tokens", RoleAdmin); err != nil {
		return nil, err
	}
	ts, err := s.opts.Store.Tokens(rq.ctx)
	if err != nil {
		return nil, err
	}
	return ok(map[string]any{"items": ts})
}

func (s *server) createToken(rq *request) (*response, error) {
	if err := rq.p.needRole("manage tokens", RoleAdmin); err != nil {
		return nil, err
	}
	data, _, err := readBody(rq)
	if err != nil {
		return nil, err
	}
	var req TokenRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, errorf(CodeInvalid, "the body must be a JSON token request {name, role, gateways, namespaces, expires|ttl}: %v", err)
	}
	rq.objects = []string{"Token/" + req.Name}
	t, err := req.token()
	if err != nil {
		return nil, err
	}
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	t.SecretHash = store.HashSecret(secret)
	if err := s.opts.Store.PutToken(rq.ctx, t); err != nil {
		return nil, err
	}
	return &response{status: http.StatusCreated, body: CreatedToken{Token: t, Secret: secret}}, nil
}

// token checks a request and builds the token to store (without its secret).
func (req *TokenRequest) token() (store.Token, error) {
	t := store.Token{Name: req.Name, Role: req.Role, Gateways: req.Gateways, Namespaces: req.Namespaces, Created: time.Now().UTC().Truncate(time.Second)}
	switch {
	case req.Name == "":
		return t, fieldError("name", "required")
	case !tokenName.MatchString(req.Name) || len(req.Name) > 63:
		return t, fieldError("name", fmt.Sprintf("invalid name %q: lower-case letters, digits and '-', '_', '.', '@' inside", req.Name))
	case req.Name == BootstrapActor:
		return t, fieldError("name", fmt.Sprintf("%q is reserved for the bootstrap admin token", req.Name))
	case !slices.Contains([]string{RoleAdmin, RoleEditor, RoleViewer}, req.Role):
		return t, fieldError("role", fmt.Sprintf("must be admin, editor or viewer, got %q", req.Role))
	case req.Expires != "" && req.TTL != "":
		return t, fieldError("ttl", "set expires or ttl, not both")
	}
	for i, g := range req.Gateways {
		if g == "" {
			return t, fieldError("gateways["+strconv.Itoa(i)+"]", "empty gateway name")
		}
	}
	if req.Expires != "" {
		exp, err := time.Parse(time.RFC3339, req.Expires)
		if err != nil {
			return t, fieldError("expires", "must be an RFC 3339 time")
		}
		t.Expires = exp.UTC()
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return t, fieldError("ttl", fmt.Sprintf("must be a positive duration such as \"720h\", got %q", req.TTL))
		}
		t.Expires = t.Created.Add(d)
	}
	return t, nil
}

// newSecret returns 32 random bytes, base64url without padding.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *server) deleteToken(rq *request) (*response, error) {
	if err := rq.p.needRole("manage tokens", RoleAdmin); err != nil {
		return nil, err
	}
	rq.objects = []string{"Token/" + rq.name}
	ts, err := s.opts.Store.Tokens(rq.ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(ts, func(t store.Token) bool { return t.Name == rq.name })
	if err := s.opts.Store.DeleteToken(rq.ctx, rq.name); err != nil {
		return nil, err
	}
	if i < 0 { // deleted between the two calls: report what we know
		return ok(map[string]string{"name": rq.name})
	}
	return ok(ts[i])
}

// auditLog answers GET /api/v1/audit?limit=N&after=ID.
func (s *server) auditLog(rq *request) (*response, error) {
	if err := rq.p.needRole("read the audit log", RoleAdmin); err != nil {
		return nil, err
	}
	q := rq.URL.Query()
	limit, after := 100, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			return nil, fieldError("limit", "must be between 1 and 1000")
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fieldError("after", "must be an entry id (0 or more)")
		}
		after = n
	}
	entries, err := s.opts.Store.Audit(rq.ctx, after, limit)
	if err != nil {
		return nil, err
	}
	return ok(map[string]any{"items": entries})
}

// dataPlanes answers GET /api/v1/dataplanes from Options.DataPlanes.
func (s *server) dataPlanes(rq *request) (*response, error) {
	var items any = []any{}
	if s.opts.DataPlanes != nil {
		if v := s.opts.DataPlanes(); v != nil {
			items = v
		}
	}
	return ok(map[string]any{"items": items})
}

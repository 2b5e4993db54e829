package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"portico.dev/portico/api/v1alpha1"
)

// maxResponse bounds a response body read into memory.
const maxResponse = 64 << 20

// Client calls the admin API. Kinds are canonical names ("Route") or anything
// ResolveKind accepts; namespace "" is the unnamespaced objects.
type Client struct {
	base  string
	token string
	// tokenSource feeds the hint of a 401.
	tokenSource string
	http        *http.Client
}

// New builds a client for cfg. With an https server and cfg.CAFile, only that CA is
// trusted.
func New(cfg *Config) (*Client, error) {
	if err := checkServer(cfg.Server); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caFile %s: no PEM certificate found", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{
		base:        strings.TrimRight(cfg.Server, "/"),
		token:       cfg.Token,
		tokenSource: cfg.TokenSource,
		http:        &http.Client{Transport: tr, Timeout: 60 * time.Second},
	}, nil
}

// List is a list response.
type List struct {
	// ResourceVersion is the store revision the list was read at.
	ResourceVersion string
	// Items are the objects, as the server rendered them.
	Items []json.RawMessage
}

// ApplyItem is the outcome for one object of an apply.
type ApplyItem struct {
	// Kind, Namespace and Name identify the object.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Action is created, updated or unchanged.
	Action string `json:"action"`
	// ResourceVersion is the object's version after the apply.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// ApplyResult is the answer to an apply.
type ApplyResult struct {
	// DryRun is true when nothing was stored.
	DryRun bool `json:"dryRun,omitempty"`
	// Items are the objects, in the order sent.
	Items []ApplyItem `json:"items"`
	// Statuses (dry runs only) maps "Kind/name" to the conditions the change would give.
	Statuses map[string][]v1alpha1.Condition `json:"statuses,omitempty"`
}

// Revision is one entry of an object's history.
type Revision struct {
	// Revision is the store revision of the write.
	Revision FlexInt `json:"revision"`
	// Operation is create, update, delete or rollback.
	Operation string `json:"operation"`
	// Actor is who wrote it (a token's name).
	Actor string `json:"actor"`
	// Time is when, as the server rendered it (RFC 3339).
	Time string `json:"time"`
	// Object is the content written; absent for a delete.
	Object json.RawMessage `json:"object,omitempty"`
}

// FlexInt decodes a JSON number or a decimal string.
type FlexInt int64

// UnmarshalJSON accepts 12 and "12".
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("revision %s: not an integer", b)
	}
	*n = FlexInt(v)
	return nil
}

// Get returns one object.
func (c *Client) Get(ctx context.Context, kind, namespace, name string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.object(ctx, http.MethodGet, kind, namespace, name, "", false, nil, &out)
	return out, err
}

// List returns the objects of a kind in namespace ("*" for every namespace).
func (c *Client) List(ctx context.Context, kind, namespace string) (*List, error) {
	var out struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	k, err := ResolveKind(kind)
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/"+Plural(k), query(namespace, false), nil, &out); err != nil {
		return nil, err
	}
	return &List{ResourceVersion: out.Metadata.ResourceVersion, Items: out.Items}, nil
}

// Put creates or replaces one object (JSON or YAML in body) and returns it as stored
// (or as it would be, when dryRun).
func (c *Client) Put(ctx context.Context, kind, namespace, name string, body []byte, dryRun bool) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.object(ctx, http.MethodPut, kind, namespace, name, "", dryRun, body, &out)
	return out, err
}

// Delete removes one object and returns it.
func (c *Client) Delete(ctx context.Context, kind, namespace, name string, dryRun bool) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.object(ctx, http.MethodDelete, kind, namespace, name, "", dryRun, nil, &out)
	return out, err
}

// Apply sends many objects (multi-document YAML, a JSON object or array, or a
// `kind: List`) to be written in one transaction.
func (c *Client) Apply(ctx context.Context, body []byte, dryRun bool) (*ApplyResult, error) {
	var out ApplyResult
	if err := c.do(ctx, http.MethodPost, "/api/v1/apply", query("", dryRun), body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// History returns an object's revisions.
func (c *Client) History(ctx context.Context, kind, namespace, name string) ([]Revision, error) {
	var out struct {
		Items []Revision `json:"items"`
	}
	err := c.object(ctx, http.MethodGet, kind, namespace, name, "/history", false, nil, &out)
	return out.Items, err
}

// Rollback writes the content an object had at revision as a new revision and
// returns the object as restored.
func (c *Client) Rollback(ctx context.Context, kind, namespace, name string, revision int64) (json.RawMessage, error) {
	body, _ := json.Marshal(map[string]int64{"revision": revision})
	var out json.RawMessage
	err := c.object(ctx, http.MethodPost, kind, namespace, name, "/rollback", false, body, &out)
	return out, err
}

// objectPath is /api/v1/{plural}/{name}{suffix}.
func objectPath(kind, name, suffix string) (string, error) {
	k, err := ResolveKind(kind)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", errors.New("a name is required")
	}
	return "/api/v1/" + Plural(k) + "/" + url.PathEscape(name) + suffix, nil
}

// object sends a request about one object.
func (c *Client) object(ctx context.Context, method, kind, namespace, name, suffix string, dryRun bool, body []byte, out any) error {
	p, err := objectPath(kind, name, suffix)
	if err != nil {
		return err
	}
	return c.do(ctx, method, p, query(namespace, dryRun), body, out)
}

func query(namespace string, dryRun bool) url.Values {
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	if dryRun {
		q.Set("dryRun", "true")
	}
	return q
}

// do sends one request and decodes a 2xx JSON body into out, or returns an *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", contentType(body))
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("reading the response from %s: %w", c.base, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := decodeError(resp.StatusCode, data)
		if e.StatusCode == http.StatusUnauthorized {
			e.Hint = c.tokenHint()
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the response to %s %s: %w", method, path, err)
	}
	return nil
}

// transportError explains a request that got no answer.
func (c *Client) transportError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("admin API at %s: %w (set caFile in the client config)", c.base, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("admin API at %s: %w", c.base, err)
	}
	return fmt.Errorf("cannot reach the admin API at %s: %w (is Portico running? set --server or %s)", c.base, err, EnvServer)
}

func (c *Client) tokenHint() string {
	if c.token == "" {
		return "no token was sent: pass --token, set " + EnvToken + ", or set token/tokenFile in client.yaml (--client-config, " + EnvConfig + ")"
	}
	return "the token from " + c.tokenSource + " was refused"
}

// contentType sniffs JSON (starts with { or [) from YAML.
func contentType(body []byte) string {
	t := bytes.TrimSpace(body)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return "application/json"
	}
	return "application/yaml"
}

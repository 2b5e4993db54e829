// Package jwtauth is the jwt-auth plugin: it verifies a JSON Web Token (HS*, RS*,
// PS*, ES*, EdDSA) with a consumer's secret or public key, or with a JWK set (given by
// URL or found through OIDC discovery), checks exp/nbf/iat with clock skew, iss and
// aud, identifies the consumer and passes chosen claims upstream as headers. See
// README.md for the user manual.
package jwtauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's name in configuration.
const Name = "jwt-auth"

// CredentialType is the consumer credential type this plugin reads.
const CredentialType = "jwt-auth"

// Headers the plugin sets on the upstream request (client-sent ones are removed).
const (
	HeaderUsername  = "X-Consumer-Username"
	HeaderAnonymous = "X-Anonymous-Consumer"
)

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, env *plugin.Env) (any, error) { return New(cfg.(*Config), env) },
	})
}

// identity is a consumer's jwt-auth credential as this plugin uses it.
type identity struct {
	consumer *plugin.Consumer
	key      any      // []byte secret, public key, or nil (JWKS-only)
	username []string // X-Consumer-Username value, shared read-only
}

// claimHeader copies one claim to one header.
type claimHeader struct {
	claim, header string // header canonical
}

// JWTAuth is one configured instance, safe for concurrent use.
type JWTAuth struct {
	header, query, cookie string
	bearer                bool // header is Authorization: require the Bearer scheme
	hide                  bool
	consumerClaim         string
	claims                []claimHeader
	parser                *jwt.Parser
	ids                   map[string]*identity
	anon                  *identity
	jwks                  *jwks

	missing, invalid, expired, unknown *plugin.Reply
}

var valTrue = []string{"true"}[:1:1]

// New builds the consumer key index and, with jwksURL or oidcIssuer, starts fetching
// the JWK set in the background. Two consumers with the same key, an unusable key or
// an unknown anonymous consumer are errors.
func New(cfg *Config, env *plugin.Env) (*JWTAuth, error) {
	a := &JWTAuth{
		header:        textproto.CanonicalMIMEHeaderKey(cfg.Header),
		query:         cfg.Query,
		cookie:        cfg.Cookie,
		hide:          cfg.HideCredentials == nil || *cfg.HideCredentials,
		consumerClaim: cfg.ConsumerClaim,
		ids:           map[string]*identity{},
	}
	if a.header == "" {
		a.header = "Authorization"
	}
	a.bearer = a.header == "Authorization"
	if a.consumerClaim == "" {
		a.consumerClaim = "iss"
	}
	for claim, h := range cfg.ClaimsToHeaders {
		a.claims = append(a.claims, claimHeader{claim, textproto.CanonicalMIMEHeaderKey(h)})
	}

	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = Algorithms
	}
	skew := DefaultClockSkew
	if cfg.ClockSkew != nil {
		skew = time.Duration(*cfg.ClockSkew)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(skew), jwt.WithIssuedAt()}
	if iss := cmp(cfg.Issuer, strings.TrimSuffix(cfg.OIDCIssuer, "/")); iss != "" {
		opts = append(opts, jwt.WithIssuer(iss))
	}
	if len(cfg.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audiences...))
	}
	a.parser = jwt.NewParser(opts...)

	var consumers []*plugin.Consumer
	var log *slog.Logger
	if env != nil {
		consumers, log = env.Consumers.All(), env.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	for _, c := range consumers {
		for _, cred := range c.Credentials {
			if cred.Type != CredentialType {
				continue
			}
			id, err := newIdentity(c, cred)
			if err != nil {
				return nil, err
			}
			k := cred.Fields["key"]
			if other, dup := a.ids[k]; dup && other.consumer != c {
				return nil, fmt.Errorf("consumers %q and %q have the same jwt-auth key", other.consumer.Name, c.Name)
			}
			a.ids[k] = id
		}
	}
	if cfg.Anonymous != "" {
		c, ok := env.Consumers.Get(cfg.Anonymous)
		if !ok {
			return nil, &plugin.FieldError{Field: "anonymous", Message: fmt.Sprintf("consumer %q does not exist", cfg.Anonymous)}
		}
		a.anon = &identity{consumer: c, username: []string{c.Name}[:1:1]}
	}
	a.missing = unauthorized(`Bearer realm="portico"`, "missing token")
	a.invalid = unauthorized(`Bearer realm="portico", error="invalid_token"`, "invalid token")
	a.expired = unauthorized(`Bearer realm="portico", error="invalid_token"`, "token expired")
	a.unknown = unauthorized(`Bearer realm="portico", error="invalid_token"`, "token matches no consumer")
	if cfg.JWKSURL != "" || cfg.OIDCIssuer != "" {
		refresh := DefaultJWKSRefresh
		if cfg.JWKSRefresh != nil {
			refresh = time.Duration(*cfg.JWKSRefresh)
		}
		a.jwks = newJWKS(cfg.JWKSURL, cfg.OIDCIssuer, refresh, log)
	}
	return a, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func newIdentity(c *plugin.Consumer, cred plugin.Credential) (*identity, error) {
	id := &identity{consumer: c, username: []string{c.Name}[:1:1]}
	if cred.Fields["key"] == "" {
		return nil, fmt.Errorf("consumer %q: jwt-auth credential has no key", c.Name)
	}
	if s := cred.Fields["secret"]; s != "" {
		id.key = []byte(s)
	} else if p := cred.Fields["publicKey"]; p != "" {
		k, err := v1alpha1.ParsePublicKeyPEM(p)
		if err != nil {
			return nil, fmt.Errorf("consumer %q: jwt-auth publicKey: %v", c.Name, err)
		}
		id.key = k
	}
	return id, nil
}

func unauthorized(challenge, msg string) *plugin.Reply {
	r := plugin.JSONError(http.StatusUnauthorized, "unauthorized", msg)
	r.Header["Www-Authenticate"] = []string{challenge}
	return r
}

// Close stops the JWKS refresher.
func (a *JWTAuth) Close() error {
	if a.jwks != nil {
		a.jwks.close()
	}
	return nil
}

var errNoKey = errors.New("no key to verify the token")

// keyFunc picks the verification key: from the JWK set by kid (fetching again,
// rate-limited, when the kid is unknown), else the key of the consumer named by the
// consumer claim. A key that does not fit the token's algorithm is never offered.
func (a *JWTAuth) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	var id *identity
	if claims, ok := t.Claims.(jwt.MapClaims); ok {
		if v, ok := claims[a.consumerClaim].(string); ok {
			id = a.ids[v]
		}
	}
	kid, _ := t.Header["kid"].(string)
	if a.jwks != nil && (kid != "" || id == nil || id.key == nil) {
		keys := a.jwks.lookup(kid, alg)
		if len(keys) == 0 {
			// An unknown kid (or no set yet): fetch again, rate-limited.
			a.jwks.refresh(true)
			keys = a.jwks.lookup(kid, alg)
		}
		if len(keys) == 1 {
			return keys[0], nil
		}
		if len(keys) > 1 {
			set := jwt.VerificationKeySet{}
			for _, k := range keys {
				set.Keys = append(set.Keys, k)
			}
			return set, nil
		}
	}
	if id != nil && id.key != nil && keyFits(alg, id.key) {
		return id.key, nil
	}
	return nil, errNoKey
}

// Access verifies the token and identifies the consumer, or answers 401.
func (a *JWTAuth) Access(c *plugin.Context) error {
	r := c.Request
	h := r.Header
	delete(h, HeaderUsername)
	delete(h, HeaderAnonymous)
	for _, ch := range a.claims {
		delete(h, ch.header)
	}

	raw, from := a.token(r)
	if raw == "" {
		if a.anon == nil {
			return a.missing
		}
		c.Consumer = a.anon.consumer
		h[HeaderUsername] = a.anon.username
		h[HeaderAnonymous] = valTrue
		return nil
	}
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(raw, claims, a.keyFunc); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return a.expired
		}
		return a.invalid
	}
	id := a.anon
	if v, ok := claims[a.consumerClaim].(string); ok && a.ids[v] != nil {
		id = a.ids[v]
	}
	if id == nil {
		return a.unknown // verified by the JWK set, but no consumer and no anonymous
	}
	if a.hide {
		a.removeToken(r, from)
	}
	c.Consumer = id.consumer
	h[HeaderUsername] = id.username
	if id == a.anon {
		h[HeaderAnonymous] = valTrue
	}
	for _, ch := range a.claims {
		if v, ok := claimString(claims[ch.claim]); ok {
			h[ch.header] = []string{v}
		}
	}
	return nil
}

// Token sources.
const (
	fromHeader = iota + 1
	fromQuery
	fromCookie
)

// token finds the token: header, then query parameter, then cookie.
func (a *JWTAuth) token(r *http.Request) (string, int) {
	if v := r.Header.Get(a.header); v != "" {
		const p = "Bearer "
		switch {
		case len(v) > len(p) && strings.EqualFold(v[:len(p)], p):
			return strings.TrimSpace(v[len(p):]), fromHeader
		case !a.bearer:
			return strings.TrimSpace(v), fromHeader
		}
	}
	if a.query != "" {
		if v := r.URL.Query().Get(a.query); v != "" {
			return v, fromQuery
		}
	}
	if a.cookie != "" {
		if ck, err := r.Cookie(a.cookie); err == nil && ck.Value != "" {
			return ck.Value, fromCookie
		}
	}
	return "", 0
}

// removeToken takes the token out of the request.
func (a *JWTAuth) removeToken(r *http.Request, from int) {
	switch from {
	case fromHeader:
		delete(r.Header, a.header)
	case fromQuery:
		r.URL.RawQuery = removeQuery(r.URL.RawQuery, a.query)
	case fromCookie:
		cookies := r.Cookies()
		delete(r.Header, "Cookie")
		for _, ck := range cookies {
			if ck.Name != a.cookie {
				r.AddCookie(ck)
			}
		}
	}
}

// removeQuery drops every occurrence of parameter name from raw, keeping the rest
// byte for byte.
func removeQuery(raw, name string) string {
	var b strings.Builder
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); k == name || (err == nil && uk == name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

// claimString renders a claim as a header value: strings as they are, numbers and
// booleans in JSON form, lists of strings joined by ", ", anything else as JSON.
// Values with control characters are not forwarded.
func claimString(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			p, ok := e.(string)
			if !ok {
				b, _ := json.Marshal(x)
				return checked(string(b))
			}
			parts = append(parts, p)
		}
		s = strings.Join(parts, ", ")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	return checked(s)
}

func checked(s string) (string, bool) {
	if hasControl(s) {
		return "", false
	}
	return s, true
}

package jwtauth

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Defaults and bounds.
const (
	DefaultClockSkew   = 30 * time.Second
	DefaultJWKSRefresh = 5 * time.Minute
	maxClockSkew       = 10 * time.Minute
	minJWKSRefresh     = 10 * time.Second
)

// Config is the plugin's configuration.
type Config struct {
	// Header carries the token; default "Authorization" (as "Bearer <token>"). Any
	// other header may hold the bare token or "Bearer <token>".
	Header string `json:"header,omitempty"`
	// Query names a query parameter that may carry the token (after the header).
	Query string `json:"query,omitempty"`
	// Cookie names a cookie that may carry the token (after the query).
	Cookie string `json:"cookie,omitempty"`
	// Algorithms allowed; default all supported (Algorithms).
	Algorithms []string `json:"algorithms,omitempty"`
	// Issuer, when set, must equal the token's iss. Defaults to OIDCIssuer.
	Issuer string `json:"issuer,omitempty"`
	// Audiences, when set: the token's aud must contain one of them.
	Audiences []string `json:"audiences,omitempty"`
	// ClockSkew tolerated for exp, nbf and iat; default 30s.
	ClockSkew *pluginutil.Duration `json:"clockSkew,omitempty"`
	// ClaimsToHeaders copies claims to upstream request headers ({claim: header}).
	ClaimsToHeaders map[string]string `json:"claimsToHeaders,omitempty"`
	// JWKSURL is a JWK set trusted to sign tokens.
	JWKSURL string `json:"jwksURL,omitempty"`
	// OIDCIssuer finds the JWK set through OpenID Connect discovery
	// (<issuer>/.well-known/openid-configuration → jwks_uri) when JWKSURL is not set.
	OIDCIssuer string `json:"oidcIssuer,omitempty"`
	// JWKSRefresh is how often the JWK set is fetched again; default 5m.
	JWKSRefresh *pluginutil.Duration `json:"jwksRefresh,omitempty"`
	// ConsumerClaim names the claim matched against consumers' jwt-auth keys;
	// default "iss".
	ConsumerClaim string `json:"consumerClaim,omitempty"`
	// Anonymous names the consumer used when the request carries no token, or a
	// valid JWKS-signed token that matches no consumer.
	Anonymous string `json:"anonymous,omitempty"`
	// HideCredentials removes the token from the request before it goes upstream;
	// default true.
	HideCredentials *bool `json:"hideCredentials,omitempty"`
}

// Validate checks the field values.
func (c *Config) Validate() error {
	fe := func(field, format string, args ...any) error {
		return &plugin.FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	if c.Header != "" && !isToken(c.Header) {
		return fe("header", "%q is not a valid header name", c.Header)
	}
	if c.Query != "" && strings.ContainsAny(c.Query, "&=#? ") {
		return fe("query", "%q is not a valid query parameter name", c.Query)
	}
	if c.Cookie != "" && !isToken(c.Cookie) {
		return fe("cookie", "%q is not a valid cookie name", c.Cookie)
	}
	for i, a := range c.Algorithms {
		if !knownAlg(a) {
			return fe(fmt.Sprintf("algorithms[%d]", i), "unknown algorithm %q: one of %s", a, strings.Join(Algorithms, ", "))
		}
	}
	if c.ClockSkew != nil && (*c.ClockSkew < 0 || time.Duration(*c.ClockSkew) > maxClockSkew) {
		return fe("clockSkew", "must be between 0 and %s", maxClockSkew)
	}
	if c.JWKSRefresh != nil && time.Duration(*c.JWKSRefresh) < minJWKSRefresh {
		return fe("jwksRefresh", "must be at least %s", minJWKSRefresh)
	}
	for claim, h := range c.ClaimsToHeaders {
		if claim == "" {
			return fe("claimsToHeaders", "claim names must not be empty")
		}
		if !isToken(h) || h == "" {
			return fe("claimsToHeaders."+claim, "%q is not a valid header name", h)
		}
	}
	for field, u := range map[string]string{"jwksURL": c.JWKSURL, "oidcIssuer": c.OIDCIssuer} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fe(field, "must be an absolute http or https URL")
		}
	}
	if c.ConsumerClaim != "" && hasControl(c.ConsumerClaim) {
		return fe("consumerClaim", "must not contain control characters")
	}
	return nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, b) >= 0 {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

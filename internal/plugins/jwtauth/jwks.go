package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// JWKS fetching limits.
const (
	fetchTimeout = 5 * time.Second
	maxDocBytes  = 1 << 20
	// minForced is the least time between two fetches triggered by an unknown kid, so
	// tokens with made-up kids cannot make the gateway hammer the key server.
	minForced = 10 * time.Second
)

// jwks keeps a JWK set fetched from a URL (or found through OIDC discovery), refreshed
// on an interval and, rate-limited, when a token names an unknown kid. A failed fetch
// keeps the last good set.
type jwks struct {
	url       string // JWKS URL; "" until discovery found it
	discovery string // OIDC discovery document URL, or ""
	client    *http.Client
	log       *slog.Logger
	minForced time.Duration

	mu   sync.RWMutex
	keys []setKey

	fetchMu   sync.Mutex // serialises fetches; held while one runs
	lastFetch time.Time  // last fetch attempt, under fetchMu

	stop chan struct{}
	done chan struct{}
}

func newJWKS(url, oidcIssuer string, refresh time.Duration, log *slog.Logger) *jwks {
	j := &jwks{
		url:       url,
		client:    &http.Client{Timeout: fetchTimeout},
		log:       log,
		minForced: minForced,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if oidcIssuer != "" {
		j.discovery = strings.TrimSuffix(oidcIssuer, "/") + "/.well-known/openid-configuration"
	}
	go j.loop(refresh)
	return j
}

// loop fetches at once, then every refresh, until close.
func (j *jwks) loop(refresh time.Duration) {
	defer close(j.done)
	t := time.NewTicker(refresh)
	defer t.Stop()
	for {
		j.refresh(false)
		select {
		case <-j.stop:
			return
		case <-t.C:
		}
	}
}

func (j *jwks) close() {
	close(j.stop)
	<-j.done
}

// lookup returns the keys that may verify a token with kid and alg: the key with
// that kid, or every key when kid is "" (the token does not say).
func (j *jwks) lookup(kid, alg string) []any {
	j.mu.RLock()
	defer j.mu.RUnlock()
	var out []any
	for _, k := range j.keys {
		if (kid != "" && k.kid != kid) || (k.alg != "" && k.alg != alg) || !keyFits(alg, k.key) {
			continue
		}
		out = append(out, k.key)
	}
	return out
}

// refresh fetches the set. forced (an unknown kid) is skipped when a fetch was
// attempted less than minForced ago; concurrent callers wait for the running fetch
// instead of starting another.
func (j *jwks) refresh(forced bool) {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	if forced && time.Since(j.lastFetch) < j.minForced {
		return
	}
	j.lastFetch = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	if j.url == "" {
		var doc struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := j.getJSON(ctx, j.discovery, &doc); err != nil {
			j.log.Warn("jwt-auth: OIDC discovery failed", "url", j.discovery, "error", err)
			return
		}
		if doc.JWKSURI == "" {
			j.log.Warn("jwt-auth: OIDC discovery document has no jwks_uri", "url", j.discovery)
			return
		}
		j.url = doc.JWKSURI
	}
	body, err := j.get(ctx, j.url)
	if err == nil {
		var keys []setKey
		if keys, err = parseJWKS(body); err == nil {
			j.mu.Lock()
			j.keys = keys
			j.mu.Unlock()
			return
		}
	}
	j.log.Warn("jwt-auth: JWKS fetch failed, keeping the last good set", "url", j.url, "error", err)
}

func (j *jwks) getJSON(ctx context.Context, url string, v any) error {
	body, err := j.get(ctx, url)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// get fetches url with a bounded body size.
func (j *jwks) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxDocBytes {
		return nil, errors.New("document larger than 1 MiB")
	}
	return body, nil
}

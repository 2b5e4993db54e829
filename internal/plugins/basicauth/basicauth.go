// Package basicauth is the basic-auth plugin: it identifies the consumer from an
// `Authorization: Basic` header, checking the password against the consumer's bcrypt
// or argon2id hash (ir.Credential fields "username", "passwordHash"). See README.md
// for the user manual.
package basicauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/plugin"
)

// Name is the plugin's name in configuration.
const Name = "basic-auth"

// CredentialType is the consumer credential type this plugin reads.
const CredentialType = "basic-auth"

// Headers the plugin sets on the upstream request (client-sent ones are removed).
const (
	HeaderUsername  = "X-Consumer-Username"
	HeaderAnonymous = "X-Anonymous-Consumer"
)

// Verification cache bounds.
const (
	// CacheTTL is how long a successful verification is remembered.
	CacheTTL = 30 * time.Second
	// cacheMax bounds the number of remembered verifications per instance.
	cacheMax = 10000
)

// Config is the plugin's configuration.
type Config struct {
	// HideCredentials removes the Authorization header before the request goes
	// upstream; default true.
	HideCredentials *bool `json:"hideCredentials,omitempty"`
	// Anonymous names the consumer used when the request carries no credentials.
	Anonymous string `json:"anonymous,omitempty"`
	// Realm is sent in WWW-Authenticate; default "portico".
	Realm string `json:"realm,omitempty"`
}

// Validate checks the field values.
func (c *Config) Validate() error {
	if strings.ContainsAny(c.Realm, "\"\\\r\n") {
		return &plugin.FieldError{Field: "realm", Message: "must not contain quotes, backslashes or line breaks"}
	}
	return nil
}

func init() {
	plugin.Register(&plugin.Definition{
		Name:      Name,
		NewConfig: func() any { return &Config{} },
		New:       func(cfg any, env *plugin.Env) (any, error) { return New(cfg.(*Config), env) },
	})
}

// verifier checks a password against one stored hash.
type verifier interface{ verify(password []byte) bool }

type bcryptHash []byte

func (h bcryptHash) verify(pw []byte) bool { return bcrypt.CompareHashAndPassword(h, pw) == nil }

type argonHash struct{ *v1alpha1.Argon2idHash }

func (h argonHash) verify(pw []byte) bool {
	got := argon2.IDKey(pw, h.Salt, h.Time, h.Memory, h.Threads, uint32(len(h.Hash)))
	return subtle.ConstantTimeCompare(got, h.Hash) == 1
}

// identity is a consumer's basic-auth credential as this plugin uses it.
type identity struct {
	consumer *plugin.Consumer
	hash     string
	check    verifier
	username []string // X-Consumer-Username value, shared read-only
}

// BasicAuth is one configured instance, safe for concurrent use.
type BasicAuth struct {
	hide  bool
	anon  *identity
	users map[string]*identity
	cache *verifyCache

	missing, invalid *plugin.Reply
}

var valTrue = []string{"true"}[:1:1]

// New builds the username index from env's consumers. A username used by two
// consumers, a malformed hash or an unknown anonymous consumer are errors.
func New(cfg *Config, env *plugin.Env) (*BasicAuth, error) {
	b := &BasicAuth{
		hide:  cfg.HideCredentials == nil || *cfg.HideCredentials,
		users: map[string]*identity{},
		cache: newVerifyCache(cacheMax, CacheTTL),
	}
	var consumers []*plugin.Consumer
	if env != nil {
		consumers = env.Consumers.All()
	}
	for _, c := range consumers {
		for _, cred := range c.Credentials {
			if cred.Type != CredentialType {
				continue
			}
			user, hash := cred.Fields["username"], cred.Fields["passwordHash"]
			id := &identity{consumer: c, hash: hash, username: []string{c.Name}[:1:1]}
			if err := v1alpha1.CheckPasswordHash(hash); user == "" || err != nil {
				return nil, fmt.Errorf("consumer %q: basic-auth credential has no valid username and passwordHash", c.Name)
			}
			if strings.HasPrefix(hash, "$argon2id$") {
				a, _ := v1alpha1.ParseArgon2id(hash)
				id.check = argonHash{a}
			} else {
				id.check = bcryptHash(hash)
			}
			if other, dup := b.users[user]; dup && other.consumer != c {
				return nil, fmt.Errorf("consumers %q and %q have the same basic-auth username", other.consumer.Name, c.Name)
			}
			b.users[user] = id
		}
	}
	if cfg.Anonymous != "" {
		c, ok := env.Consumers.Get(cfg.Anonymous)
		if !ok {
			return nil, &plugin.FieldError{Field: "anonymous", Message: fmt.Sprintf("consumer %q does not exist", cfg.Anonymous)}
		}
		b.anon = &identity{consumer: c, username: []string{c.Name}[:1:1]}
	}
	realm := cfg.Realm
	if realm == "" {
		realm = "portico"
	}
	b.missing = unauthorized(realm, "missing credentials")
	b.invalid = unauthorized(realm, "invalid credentials")
	return b, nil
}

func unauthorized(realm, msg string) *plugin.Reply {
	r := plugin.JSONError(http.StatusUnauthorized, "unauthorized", msg)
	r.Header["Www-Authenticate"] = []string{`Basic realm="` + realm + `"`}
	return r
}

// Access identifies the consumer or answers 401.
func (b *BasicAuth) Access(c *plugin.Context) error {
	h := c.Request.Header
	delete(h, HeaderUsername)
	delete(h, HeaderAnonymous)

	user, pass, present, ok := parseBasic(h.Get("Authorization"))
	if !present {
		if b.anon == nil {
			return b.missing
		}
		c.Consumer = b.anon.consumer
		h[HeaderUsername] = b.anon.username
		h[HeaderAnonymous] = valTrue
		return nil
	}
	if !ok {
		return b.invalid
	}
	id := b.users[user]
	if id == nil {
		// Spend as long as a real check, so timing does not reveal which users exist.
		bcryptHash(dummyHash()).verify([]byte(pass))
		return b.invalid
	}
	if !b.verify(id, user, pass) {
		return b.invalid
	}
	if b.hide {
		delete(h, "Authorization")
	}
	c.Consumer = id.consumer
	h[HeaderUsername] = id.username
	return nil
}

// dummyHash is a bcrypt hash (cost 10) of a random password, checked for unknown users.
var dummyHash = sync.OnceValue(func() []byte {
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	h, _ := bcrypt.GenerateFromPassword(pw, 10)
	return h
})

// verify checks pass against id's hash, consulting the cache first.
func (b *BasicAuth) verify(id *identity, user, pass string) bool {
	key := cacheKey(user, pass, id.hash)
	if b.cache.hit(key) {
		return true
	}
	if !id.check.verify([]byte(pass)) {
		return false
	}
	b.cache.add(key)
	return true
}

// parseBasic splits an Authorization header. present reports a Basic header at all;
// ok that it decoded to user:password.
func parseBasic(v string) (user, pass string, present, ok bool) {
	const prefix = "Basic "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", "", false, false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[len(prefix):]))
	if err != nil {
		return "", "", true, false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, true, ok && user != ""
}

// cacheKey is sha256(username ":" password) followed by the stored hash, so a changed
// hash (new password) never matches an old entry. The password itself is not kept.
func cacheKey(user, pass, hash string) string {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{':'})
	h.Write([]byte(pass))
	var sum [sha256.Size]byte
	return string(h.Sum(sum[:0])) + hash
}

// verifyCache remembers successful verifications for a short time. Bounded: when full
// it drops expired entries, then (still full) an arbitrary one.
type verifyCache struct {
	mu  sync.Mutex
	m   map[string]time.Time // key → expiry
	max int
	ttl time.Duration
	now func() time.Time
}

func newVerifyCache(max int, ttl time.Duration) *verifyCache {
	return &verifyCache{m: map[string]time.Time{}, max: max, ttl: ttl, now: time.Now}
}

func (vc *verifyCache) hit(key string) bool {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	exp, ok := vc.m[key]
	if ok && vc.now().After(exp) {
		delete(vc.m, key)
		return false
	}
	return ok
}

func (vc *verifyCache) add(key string) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	now := vc.now()
	if len(vc.m) >= vc.max {
		for k, exp := range vc.m {
			if now.After(exp) {
				delete(vc.m, k)
			}
		}
		for k := range vc.m {
			if len(vc.m) < vc.max {
				break
			}
			delete(vc.m, k)
		}
	}
	vc.m[key] = now.Add(vc.ttl)
}

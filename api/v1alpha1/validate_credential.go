package v1alpha1

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on credentials.
const (
	// MaxPasswordBytes is bcrypt's input limit: longer passwords would be truncated.
	MaxPasswordBytes = 72
	// MinJWTSecretBytes is the shortest HMAC secret accepted (RFC 7518 §3.2: at least
	// the hash size of HS256).
	MinJWTSecretBytes = 32
	// MinRSABits is the smallest RSA key accepted for jwt-auth.
	MinRSABits = 2048
	// Argon2id parameter bounds: larger costs would let a config make each login
	// expensive enough to take the gateway down.
	MaxArgon2Memory  = 1 << 20 // KiB (1 GiB)
	MaxArgon2Time    = 16
	MaxArgon2Threads = 64
)

// validateCredential checks one credential and returns the name and value of the
// field that identifies it among the consumer's credentials of its type ("" when
// invalid or absent), so duplicates can be reported.
func validateCredential(errs *fieldErrors, p string, cr *Credential) (field, id string) {
	unused := func(names ...string) {
		vals := map[string]string{"key": cr.Key, "username": cr.Username, "password": cr.Password,
			"passwordHash": cr.PasswordHash, "secret": cr.Secret, "publicKey": cr.PublicKey}
		for _, n := range names {
			if vals[n] != "" {
				errs.add(p+"."+n, "not used by type %s", cr.Type)
			}
		}
	}
	switch cr.Type {
	case CredentialKeyAuth:
		unused("username", "password", "passwordHash", "secret", "publicKey")
		n := utf8.RuneCountInString(cr.Key)
		switch {
		case cr.Key == "":
			errs.add(p+".key", "required for type %s", CredentialKeyAuth)
		case n < MinKeyLength:
			errs.add(p+".key", "must be at least %d characters, got %d", MinKeyLength, n)
		case hasSpaceOrControl(cr.Key):
			errs.add(p+".key", "must not contain spaces or control characters")
		default:
			return "key", cr.Key
		}
	case CredentialBasicAuth:
		unused("key", "secret", "publicKey")
		switch {
		case cr.Password != "" && cr.PasswordHash != "":
			errs.add(p+".password", "set password or passwordHash, not both")
		case cr.Password == "" && cr.PasswordHash == "":
			errs.add(p+".password", "required for type %s (or passwordHash)", CredentialBasicAuth)
		case len(cr.Password) > MaxPasswordBytes:
			errs.add(p+".password", "must be at most %d bytes, got %d", MaxPasswordBytes, len(cr.Password))
		case cr.PasswordHash != "":
			if err := CheckPasswordHash(cr.PasswordHash); err != nil {
				errs.add(p+".passwordHash", "%v", err)
			}
		}
		switch {
		case cr.Username == "":
			errs.add(p+".username", "required for type %s", CredentialBasicAuth)
		case strings.ContainsRune(cr.Username, ':') || hasControl(cr.Username):
			errs.add(p+".username", "must not contain ':' or control characters")
		default:
			return "username", cr.Username
		}
	case CredentialJWTAuth:
		unused("username", "password", "passwordHash")
		switch {
		case cr.Secret != "" && cr.PublicKey != "":
			errs.add(p+".secret", "set secret or publicKey, not both")
		case cr.Secret != "" && len(cr.Secret) < MinJWTSecretBytes:
			errs.add(p+".secret", "must be at least %d bytes, got %d", MinJWTSecretBytes, len(cr.Secret))
		case cr.PublicKey != "":
			if _, err := ParsePublicKeyPEM(cr.PublicKey); err != nil {
				errs.add(p+".publicKey", "%v", err)
			}
		}
		switch {
		case cr.Key == "":
			errs.add(p+".key", "required for type %s", CredentialJWTAuth)
		case hasControl(cr.Key):
			errs.add(p+".key", "must not contain control characters")
		default:
			return "key", cr.Key
		}
	case "":
		errs.add(p+".type", "required: one of %s", strings.Join(CredentialTypes, ", "))
	default:
		errs.add(p+".type", "unknown credential type %q: one of %s", cr.Type, strings.Join(CredentialTypes, ", "))
	}
	return "", ""
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return true
		}
	}
	return false
}

// CheckPasswordHash accepts a bcrypt hash ($2a$, $2b$ or $2y$, cost 4–31) or an
// argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash, unpadded base64) with
// bounded parameters. Errors never repeat the hash.
func CheckPasswordHash(h string) error {
	switch {
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		if len(h) != 60 || h[6] != '$' {
			return fmt.Errorf("not a valid bcrypt hash (60 characters, $2b$NN$…)")
		}
		cost, err := strconv.Atoi(h[4:6])
		if err != nil || cost < 4 || cost > 31 {
			return fmt.Errorf("bcrypt cost must be 04–31")
		}
		return nil
	case strings.HasPrefix(h, "$argon2id$"):
		_, err := ParseArgon2id(h)
		return err
	}
	return fmt.Errorf("must be a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$) hash")
}

// Argon2idHash is a parsed argon2id PHC string.
type Argon2idHash struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	Salt    []byte
	Hash    []byte
}

// ParseArgon2id parses "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>" (salt and hash
// in unpadded standard base64) and checks the parameters' bounds.
func ParseArgon2id(s string) (*Argon2idHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, fmt.Errorf("argon2id hash must be $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[2] != "v=19" {
		return nil, fmt.Errorf("argon2id hash: only version v=19 is supported")
	}
	var h Argon2idHash
	var m, t, par uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("argon2id hash: bad parameter %q", k)
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			par = n
		default:
			return nil, fmt.Errorf("argon2id hash: unknown parameter %q", k)
		}
	}
	switch {
	case m < 8 || m > MaxArgon2Memory:
		return nil, fmt.Errorf("argon2id hash: m must be 8–%d KiB", MaxArgon2Memory)
	case t < 1 || t > MaxArgon2Time:
		return nil, fmt.Errorf("argon2id hash: t must be 1–%d", MaxArgon2Time)
	case par < 1 || par > MaxArgon2Threads:
		return nil, fmt.Errorf("argon2id hash: p must be 1–%d", MaxArgon2Threads)
	}
	h.Memory, h.Time, h.Threads = uint32(m), uint32(t), uint8(par)
	var err error
	if h.Salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.Salt) < 8 {
		return nil, fmt.Errorf("argon2id hash: salt must be at least 8 bytes of unpadded base64")
	}
	if h.Hash, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.Hash) < 16 || len(h.Hash) > 64 {
		return nil, fmt.Errorf("argon2id hash: hash must be 16–64 bytes of unpadded base64")
	}
	return &h, nil
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS #1)
// block into an *rsa.PublicKey (at least MinRSABits), *ecdsa.PublicKey (P-256, P-384,
// P-521) or ed25519.PublicKey.
func ParsePublicKeyPEM(s string) (any, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, fmt.Errorf("not a PEM block")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("must hold exactly one PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("public key: %v", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, need at least %d", k.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256", "P-384", "P-521":
		default:
			return nil, fmt.Errorf("unsupported curve %s", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return key, nil
}

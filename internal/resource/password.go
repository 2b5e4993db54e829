package resource

import (
	"crypto/sha256"
	"strconv"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"portico.dev/portico/api/v1alpha1"
)

// BcryptCost is the cost plain basic-auth passwords are hashed with.
const BcryptCost = 10

// maxHashCache bounds the password hash cache (entries).
const maxHashCache = 4096

// hashCache remembers the bcrypt hash made for each (namespace, consumer, username,
// password), keyed by their SHA-256, so that loading an unchanged file again yields the
// identical hash: resources compare equal and nothing is rebuilt. bcrypt salts
// randomly, so without it every reload would change the snapshot.
var hashCache = struct {
	sync.Mutex
	m map[[sha256.Size]byte]string
}{m: map[[sha256.Size]byte]string{}}

// HashPassword returns a bcrypt hash (cost BcryptCost) of password, the same one for
// the same inputs for the life of the process (within the cache's bound).
func HashPassword(namespace, consumer, username, password string) (string, error) {
	h := sha256.New()
	for _, s := range []string{namespace, consumer, username, password} {
		// Length-prefixed so that ("a/b", "c") and ("a", "b/c") differ.
		n := len(s)
		h.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		h.Write([]byte(s))
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])

	hashCache.Lock()
	hash, ok := hashCache.m[key]
	hashCache.Unlock()
	if ok {
		return hash, nil
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return "", err
	}
	hashCache.Lock()
	defer hashCache.Unlock()
	if prev, ok := hashCache.m[key]; ok {
		return prev, nil // hashed concurrently: keep the first, so results agree
	}
	if len(hashCache.m) >= maxHashCache {
		for k := range hashCache.m { // evict an arbitrary entry
			delete(hashCache.m, k)
			break
		}
	}
	hashCache.m[key] = string(b)
	return string(b), nil
}

// HashConsumerPasswords replaces every basic-auth password of c by its passwordHash.
// Credentials that are invalid (both set, too long) are left for validation to report.
func HashConsumerPasswords(c *v1alpha1.Consumer) []v1alpha1.FieldError {
	var errs []v1alpha1.FieldError
	for i := range c.Spec.Credentials {
		cr := &c.Spec.Credentials[i]
		if cr.Type != v1alpha1.CredentialBasicAuth || cr.Password == "" || cr.PasswordHash != "" ||
			len(cr.Password) > v1alpha1.MaxPasswordBytes {
			continue
		}
		h, err := HashPassword(c.Metadata.Namespace, c.Metadata.Name, cr.Username, cr.Password)
		if err != nil {
			errs = append(errs, v1alpha1.FieldError{
				Field: "spec.credentials[" + strconv.Itoa(i) + "].password", Message: "cannot hash: " + err.Error()})
			continue
		}
		cr.PasswordHash, cr.Password = h, ""
	}
	return errs
}

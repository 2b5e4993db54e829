package resource

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

const basicInput = `
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: alice}
spec:
  credentials:
  - {type: basic-auth, username: alice, password: "open sesame"}
  - {type: basic-auth, username: alice2, passwordHash: "$2b$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
`

// TestLoaderHashesPasswords: the loader replaces a plain password by a bcrypt hash of
// cost 10, and loading the same file again yields the identical hash, so the two
// results compare equal (no spurious rebuild).
func TestLoaderHashesPasswords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(basicInput), 0o644); err != nil {
		t.Fatal(err)
	}
	first, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cr := first.Consumers[0].Spec.Credentials[0]
	if cr.Password != "" || cr.PasswordHash == "" {
		t.Fatalf("password not replaced: %+v", cr)
	}
	if cost, err := bcrypt.Cost([]byte(cr.PasswordHash)); err != nil || cost != BcryptCost {
		t.Fatalf("cost %d, %v", cost, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(cr.PasswordHash), []byte("open sesame")) != nil {
		t.Fatal("hash does not match the password")
	}
	if first.Consumers[0].Spec.Credentials[1].PasswordHash[:7] != "$2b$10$" {
		t.Fatal("given passwordHash changed")
	}
	second, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first.Consumers, second.Consumers) {
		t.Fatal("reloading an unchanged file changed the consumer")
	}
	// Parse (admin API input) hashes as well, and shares the cache.
	parsed, err := Parse("in.yaml", []byte(basicInput))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Consumers[0].Spec.Credentials[0].PasswordHash != cr.PasswordHash {
		t.Fatal("Parse produced a different hash for the same input")
	}
	// A changed password gets a new hash.
	changed, err := Parse("in.yaml", []byte(strings.Replace(basicInput, "open sesame", "new password", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if h := changed.Consumers[0].Spec.Credentials[0].PasswordHash; h == cr.PasswordHash || h == "" {
		t.Fatal("changed password kept the old hash")
	}
}

func TestHashCacheKeyedByAllParts(t *testing.T) {
	a, _ := HashPassword("ns", "alice", "u", "pw")
	b, _ := HashPassword("ns", "bob", "u", "pw")
	c, _ := HashPassword("ns", "alice", "u", "pw")
	if a == b || a != c {
		t.Fatal("cache key must cover namespace, consumer, username and password")
	}
}

func TestPasswordProblems(t *testing.T) {
	got := problems(t, "in.yaml", `
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: bob}
spec:
  credentials:
  - {type: basic-auth, username: "a:b", password: "x", passwordHash: "$2b$10$x"}
  - {type: basic-auth, username: b, passwordHash: "md5:abc"}
  - {type: basic-auth, username: c, passwordHash: "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}
  - {type: basic-auth, username: d}
`)
	const pre = "in.yaml: document 1 (Consumer/bob): "
	expectProblems(t, got,
		pre+"spec.credentials[0].password: set password or passwordHash, not both",
		pre+"spec.credentials[0].username: must not contain ':' or control characters",
		pre+"spec.credentials[1].passwordHash: must be a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$) hash",
		pre+"spec.credentials[2].passwordHash: argon2id hash: m must be 8–1048576 KiB",
		pre+"spec.credentials[3].password: required for type basic-auth (or passwordHash)",
	)
}

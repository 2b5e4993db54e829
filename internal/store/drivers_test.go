package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresDSN is the test server: PORTICO_TEST_POSTGRES or the local default.
func postgresDSN() string {
	if dsn := os.Getenv("PORTICO_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// newSQLiteDSN returns a fresh database file.
func newSQLiteDSN(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "portico.db")
}

// newPostgresDSN creates a schema of its own for the test (dropped at cleanup) and returns
// a DSN that uses it. The test fails, never skips, when the server is unreachable.
func newPostgresDSN(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := postgresDSN()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s is required: %v", base, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "portico_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("bad DSN %q: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// drivers lists each driver with a function that makes a fresh, empty database.
var drivers = []struct {
	name  string
	newDB func(testing.TB) string
}{
	{"sqlite", newSQLiteDSN},
	{"postgres", newPostgresDSN},
}

func TestConformance(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) { runConformance(t, d.newDB) })
	}
}

func TestOpenDSN(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"mysql://x", ""} {
		if s, err := Open(ctx, dsn); err == nil {
			s.Close()
			t.Errorf("Open(%q): want an error", dsn)
		}
	}
	// A plain path selects SQLite.
	s, err := Open(ctx, filepath.Join(t.TempDir(), "plain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Driver() != "sqlite" {
		t.Errorf("driver = %s, want sqlite", s.Driver())
	}
}

func TestPostgresUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	_, err := Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// TestReplicasShareFeed: two stores over one PostgreSQL see each other's writes.
func TestReplicasShareFeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := newPostgresDSN(t)
	a, b := openMigrated(t, dsn), openMigrated(t, dsn)
	chA, err := a.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chB, err := b.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, route("from-a", "a.example"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, route("from-b", "b.example"), ""); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan Change{"a": chA, "b": chB} {
		got := collect(t, ch, 2)
		if got[0].Key.Name != "from-a" || got[1].Key.Name != "from-b" || got[0].Revision >= got[1].Revision {
			t.Errorf("replica %s saw %+v", name, got)
		}
	}
	// b reads a's write.
	if o, err := b.Get(ctx, "Route", "", "from-a"); err != nil || !strings.Contains(string(o.JSON), "a.example") {
		t.Errorf("b.Get: %v %v", o, err)
	}
}

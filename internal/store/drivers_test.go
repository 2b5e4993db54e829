package store

import (
	"portico.dev/portico/internal/testsupport/pgtest"

	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newSQLiteDSN returns a fresh database file.
func newSQLiteDSN(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "portico.db")
}

// newPostgresDSN is a fresh schema on the test server.
func newPostgresDSN(t testing.TB) string { return pgtest.SchemaDSN(t, "portico_test") }

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

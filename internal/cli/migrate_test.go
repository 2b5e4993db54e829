package cli

import (
	"portico.dev/portico/internal/testsupport/pgtest"

	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrateSQLite(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	_, _, err := runCLI(t, "", "migrate", "status", "--data-dir", dataDir)
	if err == nil || !strings.Contains(err.Error(), "no SQLite database at "+filepath.Join(dataDir, "portico.db")) {
		t.Fatalf("status before up: %v", err)
	}
	out, _, err := runCLI(t, "", "migrate", "up", "--data-dir", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "(sqlite): applied 1") {
		t.Fatalf("up: %q", out)
	}
	if info, err := os.Stat(dataDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", info, err)
	}
	out, _, err = runCLI(t, "", "migrate", "up", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "schema is up to date") {
		t.Fatalf("second up: %q %v", out, err)
	}
	out, _, err = runCLI(t, "", "migrate", "status", "--store", "sqlite://"+filepath.Join(dataDir, "portico.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "pending: none") || strings.Contains(out, "current: 0") {
		t.Fatalf("status: %q", out)
	}
}

// TestMigratePostgres runs against the local test server (PORTICO_TEST_POSTGRES or
// postgres://postgres@127.0.0.1:5432/test), in a schema of its own.
func TestMigratePostgres(t *testing.T) {
	dsn := pgtest.SchemaDSN(t, "portico_cli")

	out, _, err := runCLI(t, "", "migrate", "status", "--store", dsn)
	if err != nil || !strings.Contains(out, "current: 0") || !strings.Contains(out, "applied: none") {
		t.Fatalf("status before up: %q %v", out, err)
	}
	out, _, err = runCLI(t, "", "migrate", "up", "--store", dsn)
	if err != nil || !strings.Contains(out, "(postgres): applied 1") {
		t.Fatalf("up: %q %v", out, err)
	}
	out, _, err = runCLI(t, "", "migrate", "status", "--store", dsn)
	if err != nil || !strings.Contains(out, "pending: none") {
		t.Fatalf("status: %q %v", out, err)
	}
}

func TestRedactDSN(t *testing.T) {
	if got := redactDSN("postgres://u:secret@db:5432/x"); strings.Contains(got, "secret") {
		t.Fatal(got)
	}
	if got := redactDSN("/var/lib/portico.db"); got != "/var/lib/portico.db" {
		t.Fatal(got)
	}
}

package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*/*.sql
var migrationFS embed.FS

// migration is one versioned schema change.
type migration struct {
	version int
	sql     string
}

// migrations returns a dialect's migrations ("postgres" or "sqlite"), in version order.
// Files are named NNNN_description.sql.
func migrations(dialect string) ([]migration, error) {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: bad migration file name %s", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// appliedVersions reads schema_migrations through q (a *sql.DB or *sql.Tx).
func appliedVersions(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]int, error) {
	rows, err := q.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// checkNotNewer fails when the database holds a version this binary does not know.
func checkNotNewer(applied []int, all []migration) error {
	latest := 0
	if len(all) > 0 {
		latest = all[len(all)-1].version
	}
	if len(applied) > 0 && applied[len(applied)-1] > latest {
		return fmt.Errorf("%w: database is at version %d, this binary knows up to %d; upgrade Portico (schemas are never downgraded)",
			ErrSchemaTooNew, applied[len(applied)-1], latest)
	}
	return nil
}

// Migrate applies pending migrations in one transaction (PostgreSQL also takes an
// advisory lock, so replicas starting together migrate once). It is idempotent.
func (s *sqlStore) Migrate(ctx context.Context) ([]int, error) {
	all, err := migrations(s.driver)
	if err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, classify(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if s.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, s.lockMigrations); err != nil {
			return nil, classify(err)
		}
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"); err != nil {
		return nil, classify(err)
	}
	done, err := appliedVersions(ctx, tx)
	if err != nil {
		return nil, classify(err)
	}
	if err := checkNotNewer(done, all); err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range all {
		if slices.Contains(done, m.version) {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("store: migration %04d: %w", m.version, classify(err))
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
			m.version, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return nil, classify(err)
		}
		applied = append(applied, m.version)
	}
	if err := tx.Commit(); err != nil {
		return nil, classify(err)
	}
	return applied, nil
}

// Status reports applied and pending migrations without changing the database.
func (s *sqlStore) Status(ctx context.Context) (MigrationStatus, error) {
	all, err := migrations(s.driver)
	if err != nil {
		return MigrationStatus{}, err
	}
	st := MigrationStatus{}
	if len(all) > 0 {
		st.Latest = all[len(all)-1].version
	}
	var found int
	err = s.r.QueryRowContext(ctx, s.q(s.tableExists), "schema_migrations").Scan(&found)
	if err != nil && err != sql.ErrNoRows {
		return st, classify(err)
	}
	if found > 0 {
		if st.Applied, err = appliedVersions(ctx, s.r); err != nil {
			return st, classify(err)
		}
	}
	if len(st.Applied) > 0 {
		st.Current = st.Applied[len(st.Applied)-1]
	}
	for _, m := range all {
		if !slices.Contains(st.Applied, m.version) {
			st.Pending = append(st.Pending, m.version)
		}
	}
	return st, checkNotNewer(st.Applied, all)
}

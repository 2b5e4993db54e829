package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"
)

// pgDriver is a minimal database/sql driver over pgx.Conn, so both drivers share the
// database/sql code path. (pgx's own stdlib package pulls in pgxpool, whose dependency
// the module does not carry.) Queries select jsonb columns as ::text.
type pgDriver struct{}

var registerPG sync.Once

const pgDriverName = "portico-pgx"

func (pgDriver) Open(dsn string) (driver.Conn, error) {
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		return nil, err
	}
	return &pgDriverConn{c: c}, nil
}

type pgDriverConn struct{ c *pgx.Conn }

var (
	_ driver.ExecerContext      = (*pgDriverConn)(nil)
	_ driver.QueryerContext     = (*pgDriverConn)(nil)
	_ driver.ConnBeginTx        = (*pgDriverConn)(nil)
	_ driver.Validator          = (*pgDriverConn)(nil)
	_ driver.NamedValueChecker  = (*pgDriverConn)(nil)
	_ driver.SessionResetter    = (*pgDriverConn)(nil)
	_ driver.ConnPrepareContext = (*pgDriverConn)(nil)
)

func (c *pgDriverConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("store: prepared statements are not supported")
}

func (c *pgDriverConn) PrepareContext(context.Context, string) (driver.Stmt, error) {
	return nil, errors.New("store: prepared statements are not supported")
}

func (c *pgDriverConn) Close() error { return c.c.Close(context.Background()) }

func (c *pgDriverConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *pgDriverConn) BeginTx(ctx context.Context, _ driver.TxOptions) (driver.Tx, error) {
	if _, err := c.c.Exec(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	return pgDriverTx{c}, nil
}

func (c *pgDriverConn) IsValid() bool { return !c.c.IsClosed() }

func (c *pgDriverConn) ResetSession(context.Context) error {
	if c.c.IsClosed() {
		return driver.ErrBadConn
	}
	return nil
}

// CheckNamedValue passes every argument to pgx unchanged.
func (c *pgDriverConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func args(named []driver.NamedValue) []any {
	out := make([]any, len(named))
	for i, a := range named {
		out[i] = a.Value
	}
	return out
}

func (c *pgDriverConn) ExecContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Result, error) {
	tag, err := c.c.Exec(ctx, query, args(named)...)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (c *pgDriverConn) QueryContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.c.Query(ctx, query, args(named)...)
	if err != nil {
		return nil, err
	}
	return &pgDriverRows{rows: rows}, nil
}

type pgDriverTx struct{ c *pgDriverConn }

func (t pgDriverTx) Commit() error {
	_, err := t.c.c.Exec(context.Background(), "COMMIT")
	return err
}

func (t pgDriverTx) Rollback() error {
	_, err := t.c.c.Exec(context.Background(), "ROLLBACK")
	return err
}

type pgDriverRows struct{ rows pgx.Rows }

func (r *pgDriverRows) Columns() []string {
	fds := r.rows.FieldDescriptions()
	out := make([]string, len(fds))
	for i, fd := range fds {
		out[i] = fd.Name
	}
	return out
}

func (r *pgDriverRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

func (r *pgDriverRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	vals, err := r.rows.Values()
	if err != nil {
		return err
	}
	for i := range dest {
		dest[i] = vals[i]
	}
	return nil
}

func registerPGDriver() { registerPG.Do(func() { sql.Register(pgDriverName, pgDriver{}) }) }

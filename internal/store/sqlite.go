package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqlitePragmas: WAL for concurrent readers, a busy timeout instead of instant
// SQLITE_BUSY, foreign keys on, and write transactions that take the lock at BEGIN.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// openSQLite opens a database file with one writer connection and a small reader pool.
// One process should own the file: the change feed is in-process.
func openSQLite(ctx context.Context, path string) (Store, error) {
	if path == "" {
		return nil, fmt.Errorf("store: empty SQLite path")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + sqlitePragmas
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	// The writer connects first so the WAL switch happens before any reader opens.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, classify(err)
	}
	s := &sqlStore{
		driver:      "sqlite",
		w:           w,
		r:           r,
		timeArg:     func(t time.Time) any { return t.UTC().Format(time.RFC3339Nano) },
		tableExists: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
	}
	s.feed = newFeed(s, time.Second)
	return s, nil
}

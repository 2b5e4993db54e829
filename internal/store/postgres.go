package store

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the LISTEN/NOTIFY channel; a payload is the committed revision.
const notifyChannel = "portico_changes"

// openPostgres opens a pool and checks the server answers.
func openPostgres(ctx context.Context, dsn string) (Store, error) {
	registerPGDriver()
	db, err := sql.Open(pgDriverName, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, classify(err)
	}
	s := &sqlStore{
		driver:   "postgres",
		w:        db,
		r:        db,
		dollar:   true,
		jsonText: "::text",
		timeArg:  func(t time.Time) any { return t.UTC() },
		// NOTIFY inside the transaction: PostgreSQL delivers it only on commit.
		notify: func(ctx context.Context, tx *sql.Tx, rev int64) error {
			_, err := tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", notifyChannel, strconv.FormatInt(rev, 10))
			return err
		},
		tableExists:    "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
		lockMigrations: "SELECT pg_advisory_xact_lock(7270311)", // arbitrary constant: "portico migrations"
	}
	s.feed = newFeed(s, 2*time.Second)
	s.feed.listen = func(ctx context.Context, poke func(), ready chan<- error) {
		listenLoop(ctx, dsn, poke, ready)
	}
	return s, nil
}

// listenLoop holds a LISTEN connection, reconnecting with backoff, and pokes the feed on
// every notification and after every reconnect (to catch up on what it missed).
func listenLoop(ctx context.Context, dsn string, poke func(), ready chan<- error) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
		}
		if first {
			first = false
			ready <- classify(err)
			if err != nil {
				if conn != nil {
					conn.Close(context.Background())
				}
				return
			}
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			poke()
			for {
				if _, err = conn.WaitForNotification(ctx); err != nil {
					break
				}
				poke()
			}
		}
		if conn != nil {
			conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

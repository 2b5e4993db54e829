package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// classify wraps errors that mean "the database cannot be reached" in ErrUnavailable;
// other errors pass through unchanged.
func classify(err error) error {
	switch {
	case err == nil,
		errors.Is(err, ErrUnavailable), errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict),
		errors.Is(err, ErrInvalid), errors.Is(err, ErrSchemaTooNew),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case unreachable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// unreachable reports connection-level failures of either driver.
func unreachable(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	var coded interface{ Code() int }
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		// pgx refuses to use a connection a failure already closed (e.g. COMMIT after
		// the server went away between statements): nothing was sent.
		errors.Is(err, pgconn.ErrConnClosed):
		return true
	case err.Error() == "sql: database is closed":
		// database/sql has no sentinel for a closed *sql.DB (a store closed during shutdown).
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; 57P01-03: shutdown / cannot connect now.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0")
	case errors.As(err, &coded):
		// SQLite primary result codes: BUSY (5), LOCKED (6), CANTOPEN (14).
		switch coded.Code() & 0xff {
		case 5, 6, 14:
			return true
		}
	}
	return false
}

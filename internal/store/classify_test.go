package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestClassifyClosedConnection: pgx answers "conn closed" when a statement runs on a
// connection an earlier failure closed (seen on COMMIT while PostgreSQL restarts); that
// is the database being unreachable (503), not an internal error (500).
func TestClassifyClosedConnection(t *testing.T) {
	err := classify(fmt.Errorf("commit: %w", pgconn.ErrConnClosed))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("classify(conn closed) = %v, want ErrUnavailable", err)
	}
	if err := classify(errors.New("conn closed but unrelated")); errors.Is(err, ErrUnavailable) {
		t.Fatalf("an unrelated error was classified unavailable: %v", err)
	}
}

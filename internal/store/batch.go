package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"portico.dev/portico/internal/resource"
)

// batchFrom is the apply size from which rows are read and written in multi-row
// statements: a 10k-object apply then costs tens of round trips instead of tens of
// thousands (which is what makes PostgreSQL slow).
const batchFrom = 8

// batchRows bounds the rows of one statement (7 parameters a row stays far below the
// SQLite and PostgreSQL parameter limits).
const batchRows = 500

// batchable reports whether ops can be applied in multi-row statements: every key
// appears once (a key twice needs the per-object order).
func batchable(ops []Op, keys []resource.Key) bool {
	if len(ops) < batchFrom {
		return false
	}
	seen := make(map[resource.Key]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// opKeys returns the key of each op (puts were validated before).
func opKeys(ops []Op) []resource.Key {
	keys := make([]resource.Key, len(ops))
	for i, op := range ops {
		if op.Delete {
			keys[i] = op.Key
			continue
		}
		keys[i], _, _ = parseObject(op.Object)
	}
	return keys
}

type currentRow struct {
	rev     int64
	created time.Time
}

// currentMany reads the revision and creation time of every existing key.
func (s *sqlStore) currentMany(ctx context.Context, tx *sql.Tx, keys []resource.Key) (map[resource.Key]currentRow, error) {
	out := make(map[resource.Key]currentRow, len(keys))
	for start := 0; start < len(keys); start += batchRows {
		chunk := keys[start:min(start+batchRows, len(keys))]
		args := make([]any, 0, 3*len(chunk))
		for _, k := range chunk {
			args = append(args, k.Kind, k.Namespace, k.Name)
		}
		rows, err := tx.QueryContext(ctx, s.q("SELECT kind, namespace, name, revision, created_at FROM objects WHERE (kind, namespace, name) IN (VALUES "+placeholders(len(chunk), 3)+")"), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k resource.Key
			var c currentRow
			var created dbTime
			if err := rows.Scan(&k.Kind, &k.Namespace, &k.Name, &c.rev, &created); err != nil {
				rows.Close()
				return nil, err
			}
			c.created = created.t
			out[k] = c
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// applyBatch is Apply's body for batchable ops: check every precondition first, then
// write all rows in multi-row statements. The result matches the per-object path.
func (s *sqlStore) applyBatch(ctx context.Context, tx *sql.Tx, ops []Op, keys []resource.Key, first int64, actor string) ([]*Object, error) {
	cur, err := s.currentMany(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]*Object, len(ops))
	var objRows, revRows, delRows []any
	for i, op := range ops {
		key, rev := keys[i], first+int64(i)
		c := cur[key]
		if op.Delete && c.rev == 0 {
			return nil, fmt.Errorf("item %d: %w: %s", i+1, ErrNotFound, key)
		}
		if err := checkRV(op.ExpectedResourceVersion, c.rev, key); err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, err)
		}
		if op.Delete {
			delRows = append(delRows, key.Kind, key.Namespace, key.Name)
			revRows = append(revRows, rev, key.Kind, key.Namespace, key.Name, OpDelete, actor, s.timeArg(now), nil)
			continue
		}
		created, operation := c.created, OpUpdate
		if c.rev == 0 {
			created, operation = now, OpCreate
		}
		stored, err := setMeta(op.Object, map[string]any{"resourceVersion": nil, "creationTimestamp": created.Format(time.RFC3339)})
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, err)
		}
		objRows = append(objRows, key.Kind, key.Namespace, key.Name, rev, s.timeArg(created), s.timeArg(now), string(stored))
		revRows = append(revRows, rev, key.Kind, key.Namespace, key.Name, operation, actor, s.timeArg(now), string(stored))
		js, err := withRV(stored, rev)
		if err != nil {
			return nil, err
		}
		out[i] = &Object{Key: key, Revision: rev, ResourceVersion: strconv.FormatInt(rev, 10), Created: created, Updated: now, JSON: js}
	}
	if err := s.execRows(ctx, tx, "DELETE FROM objects WHERE (kind, namespace, name) IN (VALUES %s)", "", 3, delRows); err != nil {
		return nil, err
	}
	if err := s.execRows(ctx, tx, "INSERT INTO objects ("+objectCols+") VALUES %s",
		" ON CONFLICT (kind, namespace, name) DO UPDATE SET revision = excluded.revision, updated_at = excluded.updated_at, data = excluded.data", 7, objRows); err != nil {
		return nil, err
	}
	if err := s.execRows(ctx, tx, "INSERT INTO revisions (revision, kind, namespace, name, operation, actor, at, data) VALUES %s", "", 8, revRows); err != nil {
		return nil, err
	}
	return out, nil
}

// execRows runs head (with %s replaced by the row placeholders) and tail over args in
// chunks of batchRows rows of width parameters each.
func (s *sqlStore) execRows(ctx context.Context, tx *sql.Tx, head, tail string, width int, args []any) error {
	for start := 0; start < len(args); start += batchRows * width {
		chunk := args[start:min(start+batchRows*width, len(args))]
		query := fmt.Sprintf(head, placeholders(len(chunk)/width, width)) + tail
		if _, err := tx.ExecContext(ctx, s.q(query), chunk...); err != nil {
			return err
		}
	}
	return nil
}

// placeholders renders n rows of width "?" parameters: "(?, ?), (?, ?)".
func placeholders(n, width int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

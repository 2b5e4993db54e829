package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"portico.dev/portico/internal/resource"
)

// sqlStore implements Store over database/sql; the dialect differences are the fields.
type sqlStore struct {
	driver string
	// w takes every write (one connection for SQLite); r serves reads.
	w, r *sql.DB
	// dollar: placeholders are $1, $2… (PostgreSQL) instead of ?.
	dollar bool
	// jsonText is appended to a JSON column to select it as text ("::text" on PostgreSQL).
	jsonText string
	// notify, when set, runs inside each write transaction (PostgreSQL NOTIFY).
	notify func(ctx context.Context, tx *sql.Tx, rev int64) error
	// timeArg converts a time to a query argument.
	timeArg func(time.Time) any
	// tableExists is a query (one ? argument) that returns a row when a table exists.
	tableExists string
	// lockMigrations, when set, serializes migrations across processes.
	lockMigrations string
	feed           *feed
}

// q rewrites ? placeholders for the dialect.
func (s *sqlStore) q(query string) string {
	if !s.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *sqlStore) Driver() string { return s.driver }

func (s *sqlStore) Close() error {
	s.feed.close()
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// dbTime scans a timestamp stored natively (PostgreSQL) or as RFC 3339 text (SQLite).
type dbTime struct{ t time.Time }

func (d *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		d.t = x.UTC()
	case string:
		return d.parse(x)
	case []byte:
		return d.parse(string(x))
	case nil:
		d.t = time.Time{}
	default:
		return fmt.Errorf("store: cannot scan %T as time", v)
	}
	return nil
}

func (d *dbTime) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	d.t = t.UTC()
	return err
}

const objectCols = "kind, namespace, name, revision, created_at, updated_at, data"

// selectCols is objectCols for a SELECT (JSON as text).
func (s *sqlStore) selectCols() string { return objectCols + s.jsonText }

// scanObject reads objectCols and renders the caller's JSON.
func scanObject(row interface{ Scan(...any) error }) (*Object, error) {
	var o Object
	var created, updated dbTime
	var data []byte
	if err := row.Scan(&o.Key.Kind, &o.Key.Namespace, &o.Key.Name, &o.Revision, &created, &updated, &data); err != nil {
		return nil, err
	}
	o.Created, o.Updated = created.t, updated.t
	o.ResourceVersion = strconv.FormatInt(o.Revision, 10)
	var err error
	o.JSON, err = withRV(data, o.Revision)
	return &o, err
}

func (s *sqlStore) Get(ctx context.Context, kind, namespace, name string) (*Object, error) {
	row := s.r.QueryRowContext(ctx, s.q("SELECT "+s.selectCols()+" FROM objects WHERE kind = ? AND namespace = ? AND name = ?"), kind, namespace, name)
	o, err := scanObject(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, resource.Key{Kind: kind, Namespace: namespace, Name: name})
	}
	return o, classify(err)
}

func (s *sqlStore) List(ctx context.Context, kind, namespace string) ([]*Object, error) {
	var where []string
	var args []any
	if kind != "" {
		where, args = append(where, "kind = ?"), append(args, kind)
	}
	if namespace != AllNamespaces {
		where, args = append(where, "namespace = ?"), append(args, namespace)
	}
	query := "SELECT " + s.selectCols() + " FROM objects"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.r.QueryContext(ctx, s.q(query+" ORDER BY kind, namespace, name"), args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []*Object
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, o)
	}
	return out, classify(rows.Err())
}

func (s *sqlStore) Resources(ctx context.Context) (*resource.Resources, error) {
	objs, err := s.List(ctx, "", AllNamespaces)
	if err != nil {
		return nil, err
	}
	rs := &resource.Resources{}
	for _, o := range objs {
		if err := addTo(rs, o); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

func (s *sqlStore) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.r.QueryRowContext(ctx, "SELECT revision FROM store_revision WHERE id = 1").Scan(&rev)
	return rev, classify(err)
}

// write runs fn in a transaction that owns n fresh revisions, starting at first.
// Taking the revisions locks the counter row, so writers commit in revision order.
func (s *sqlStore) write(ctx context.Context, n int, fn func(tx *sql.Tx, first int64) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	var last int64
	if err := tx.QueryRowContext(ctx, s.q("UPDATE store_revision SET revision = revision + ? WHERE id = 1 RETURNING revision"), n).Scan(&last); err != nil {
		return classify(err)
	}
	if err := fn(tx, last-int64(n)+1); err != nil {
		return classify(err)
	}
	if s.notify != nil {
		if err := s.notify(ctx, tx, last); err != nil {
			return classify(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return classify(err)
	}
	s.feed.poke()
	return nil
}

// current returns an object's revision and creation time (0 when absent).
func (s *sqlStore) current(ctx context.Context, tx *sql.Tx, key resource.Key) (int64, time.Time, error) {
	var rev int64
	var created dbTime
	err := tx.QueryRowContext(ctx, s.q("SELECT revision, created_at FROM objects WHERE kind = ? AND namespace = ? AND name = ?"),
		key.Kind, key.Namespace, key.Name).Scan(&rev, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	return rev, created.t, err
}

func (s *sqlStore) record(ctx context.Context, tx *sql.Tx, rev int64, key resource.Key, op, actor string, at time.Time, data []byte) error {
	var d any
	if data != nil {
		d = string(data)
	}
	_, err := tx.ExecContext(ctx, s.q("INSERT INTO revisions (revision, kind, namespace, name, operation, actor, at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
		rev, key.Kind, key.Namespace, key.Name, op, actor, s.timeArg(at), d)
	return err
}

// putTx stores one object at revision rev; op is OpRollback or "" (create/update by state).
func (s *sqlStore) putTx(ctx context.Context, tx *sql.Tx, data []byte, expected string, rev int64, op, actor string) (*Object, error) {
	key, _, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	cur, created, err := s.current(ctx, tx, key)
	if err != nil {
		return nil, err
	}
	if err := checkRV(expected, cur, key); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if cur == 0 {
		created = now
	}
	if op == "" {
		op = OpUpdate
		if cur == 0 {
			op = OpCreate
		}
	}
	stored, err := setMeta(data, map[string]any{"resourceVersion": nil, "creationTimestamp": created.Format(time.RFC3339)})
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, s.q("INSERT INTO objects ("+objectCols+") VALUES (?, ?, ?, ?, ?, ?, ?) "+
		"ON CONFLICT (kind, namespace, name) DO UPDATE SET revision = excluded.revision, updated_at = excluded.updated_at, data = excluded.data"),
		key.Kind, key.Namespace, key.Name, rev, s.timeArg(created), s.timeArg(now), string(stored))
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, tx, rev, key, op, actor, now, stored); err != nil {
		return nil, err
	}
	out, err := withRV(stored, rev)
	if err != nil {
		return nil, err
	}
	return &Object{Key: key, Revision: rev, ResourceVersion: strconv.FormatInt(rev, 10), Created: created, Updated: now, JSON: out}, nil
}

func (s *sqlStore) deleteTx(ctx context.Context, tx *sql.Tx, key resource.Key, expected string, rev int64, actor string) error {
	cur, _, err := s.current(ctx, tx, key)
	if err != nil {
		return err
	}
	if cur == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err := checkRV(expected, cur, key); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q("DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?"), key.Kind, key.Namespace, key.Name); err != nil {
		return err
	}
	return s.record(ctx, tx, rev, key, OpDelete, actor, time.Now().UTC(), nil)
}

func (s *sqlStore) Put(ctx context.Context, obj json.RawMessage, expectedRV string) (*Object, error) {
	objs, err := s.Apply(ctx, []Op{{Object: obj, ExpectedResourceVersion: expectedRV}})
	if err != nil {
		return nil, err
	}
	return objs[0], nil
}

func (s *sqlStore) Delete(ctx context.Context, kind, namespace, name, expectedRV string) error {
	_, err := s.Apply(ctx, []Op{{Delete: true, Key: resource.Key{Kind: kind, Namespace: namespace, Name: name}, ExpectedResourceVersion: expectedRV}})
	return err
}

func (s *sqlStore) Apply(ctx context.Context, ops []Op) ([]*Object, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	// Reject malformed objects before touching the database.
	for i, op := range ops {
		if !op.Delete {
			if _, _, err := parseObject(op.Object); err != nil {
				return nil, fmt.Errorf("item %d: %w", i+1, err)
			}
		}
	}
	actor := ActorFrom(ctx)
	out := make([]*Object, len(ops))
	keys := opKeys(ops)
	batch := batchable(ops, keys)
	err := s.write(ctx, len(ops), func(tx *sql.Tx, first int64) error {
		if batch {
			var err error
			out, err = s.applyBatch(ctx, tx, ops, keys, first, actor)
			return err
		}
		for i, op := range ops {
			rev := first + int64(i)
			var err error
			if op.Delete {
				err = s.deleteTx(ctx, tx, op.Key, op.ExpectedResourceVersion, rev, actor)
			} else {
				out[i], err = s.putTx(ctx, tx, op.Object, op.ExpectedResourceVersion, rev, "", actor)
			}
			if err != nil {
				if len(ops) > 1 {
					return fmt.Errorf("item %d: %w", i+1, err)
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *sqlStore) History(ctx context.Context, kind, namespace, name string) ([]Revision, error) {
	key := resource.Key{Kind: kind, Namespace: namespace, Name: name}
	rows, err := s.r.QueryContext(ctx, s.q("SELECT revision, operation, actor, at, data"+s.jsonText+" FROM revisions WHERE kind = ? AND namespace = ? AND name = ? ORDER BY revision"),
		kind, namespace, name)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		r := Revision{Key: key}
		var at dbTime
		var data []byte
		if err := rows.Scan(&r.Revision, &r.Operation, &r.Actor, &at, &data); err != nil {
			return nil, classify(err)
		}
		r.Time = at.t
		if data != nil {
			if r.Object, err = withRV(data, r.Revision); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no history for %s", ErrNotFound, key)
	}
	return out, nil
}

func (s *sqlStore) Rollback(ctx context.Context, kind, namespace, name string, revision int64, actor string) (*Object, error) {
	key := resource.Key{Kind: kind, Namespace: namespace, Name: name}
	var out *Object
	err := s.write(ctx, 1, func(tx *sql.Tx, rev int64) error {
		var data []byte
		err := tx.QueryRowContext(ctx, s.q("SELECT data"+s.jsonText+" FROM revisions WHERE kind = ? AND namespace = ? AND name = ? AND revision = ?"),
			kind, namespace, name, revision).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s has no revision %d", ErrNotFound, key, revision)
		}
		if err != nil {
			return err
		}
		if data == nil {
			return fmt.Errorf("%w: revision %d of %s is a delete", ErrInvalid, revision, key)
		}
		out, err = s.putTx(ctx, tx, data, "", rev, OpRollback, actor)
		return err
	})
	return out, err
}

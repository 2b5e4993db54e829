// Package store is the only package that speaks SQL: it keeps Portico's objects, their
// revision history and a change feed in SQLite (embedded default) or PostgreSQL (shared by
// several control-plane replicas), behind one repository interface.
//
// Every object is stored as JSON keyed by (kind, namespace, name). Each write takes the
// next store-wide revision; an object's metadata.resourceVersion is the revision of its
// last write, rendered as a decimal string. Writers are serialized by the revision
// counter, so revisions are handed out in commit order and the change feed is gap-free.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"portico.dev/portico/internal/resource"
)

// Errors returned by every driver; test them with errors.Is.
var (
	// ErrNotFound: the object (or revision) does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the expected resourceVersion is stale.
	ErrConflict = errors.New("store: resourceVersion conflict")
	// ErrInvalid: the object cannot be stored (bad JSON, unknown kind, missing name).
	ErrInvalid = errors.New("store: invalid object")
	// ErrUnavailable: the database cannot be reached; callers may retry (HTTP 503).
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrSchemaTooNew: the database was migrated by a newer Portico; it is never downgraded.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")
)

// AllNamespaces makes List return objects from every namespace.
const AllNamespaces = "*"

// Operations recorded in the history and the change feed.
const (
	OpCreate   = "create"
	OpUpdate   = "update"
	OpDelete   = "delete"
	OpRollback = "rollback"
)

// Object is one stored object.
type Object struct {
	Key resource.Key
	// Revision is the store revision of the last write; ResourceVersion is its string form.
	Revision        int64
	ResourceVersion string
	Created         time.Time
	Updated         time.Time
	// JSON is the whole object with metadata.resourceVersion and creationTimestamp filled in.
	JSON json.RawMessage
}

// Op is one write in an Apply: a create-or-replace of Object, or a delete of Key.
type Op struct {
	Delete bool
	// Object is the JSON to store (ignored for deletes).
	Object json.RawMessage
	// Key names the object to delete (ignored for puts: the key comes from Object).
	Key resource.Key
	// ExpectedResourceVersion, when not empty, must match the stored object.
	ExpectedResourceVersion string
}

// Revision is one entry of an object's history.
type Revision struct {
	Revision  int64
	Key       resource.Key
	Operation string
	Actor     string
	Time      time.Time
	// Object is the content written at this revision; nil for a delete.
	Object json.RawMessage
}

// Change is one committed write, as delivered by the change feed.
type Change struct {
	Revision  int64
	Key       resource.Key
	Operation string
}

// MigrationStatus reports which schema versions exist and which are applied.
type MigrationStatus struct {
	// Current is the highest applied version (0 for an empty database).
	Current int
	// Latest is the highest version this binary knows.
	Latest  int
	Applied []int
	Pending []int
}

// Store is the repository API shared by both drivers.
type Store interface {
	// Get returns one object.
	Get(ctx context.Context, kind, namespace, name string) (*Object, error)
	// List returns the objects of a kind ("" for every kind) in a namespace
	// (AllNamespaces for every namespace), ordered by kind, namespace and name.
	List(ctx context.Context, kind, namespace string) ([]*Object, error)
	// Put creates or replaces an object. A non-empty expectedRV must equal the stored
	// resourceVersion (a missing object never matches), else ErrConflict.
	Put(ctx context.Context, obj json.RawMessage, expectedRV string) (*Object, error)
	// Delete removes an object, checking expectedRV as Put does.
	Delete(ctx context.Context, kind, namespace, name, expectedRV string) error
	// Apply runs many puts and deletes in one transaction: all are written or none.
	// The results are in the order of ops (nil for deletes).
	Apply(ctx context.Context, ops []Op) ([]*Object, error)
	// Resources returns every stored object as the pipeline's input model.
	Resources(ctx context.Context) (*resource.Resources, error)
	// History returns an object's revisions, oldest first.
	History(ctx context.Context, kind, namespace, name string) ([]Revision, error)
	// Rollback writes the content an object had at revision as a new revision.
	Rollback(ctx context.Context, kind, namespace, name string, revision int64, actor string) (*Object, error)
	// Changes delivers the changes committed after the call, in revision order, until
	// ctx ends (then the channel is closed). To follow the store, subscribe first and
	// then read Resources: no change is missed. A subscriber that falls too far behind has its channel closed and must
	// resynchronize (Resources, then Changes again).
	Changes(ctx context.Context) (<-chan Change, error)
	// Revision returns the store's current revision.
	Revision(ctx context.Context) (int64, error)
	// Migrate applies pending migrations and returns the versions it applied.
	Migrate(ctx context.Context) ([]int, error)
	// Status reports the migration state.
	Status(ctx context.Context) (MigrationStatus, error)
	// AppendAudit records one admin API audit entry (ID and, when zero, Time are assigned).
	AppendAudit(ctx context.Context, e AuditEntry) error
	// Audit returns up to limit audit entries with an ID above after, oldest first.
	Audit(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
	// PutToken stores a new API token; a name (or secret) already in use is ErrConflict.
	PutToken(ctx context.Context, t Token) error
	// DeleteToken removes an API token (ErrNotFound when absent).
	DeleteToken(ctx context.Context, name string) error
	// Tokens lists the API tokens by name.
	Tokens(ctx context.Context) ([]Token, error)
	// TokenBySecretHash finds a token by HashSecret of its secret (ErrNotFound when none).
	TokenBySecretHash(ctx context.Context, hash string) (*Token, error)
	// Driver names the driver: "postgres" or "sqlite".
	Driver() string
	// Close releases the database.
	Close() error
}

// Migrate applies s's pending migrations (the `portico migrate up` entry point).
func Migrate(ctx context.Context, s Store) ([]int, error) { return s.Migrate(ctx) }

type actorKey struct{}

// WithActor returns a context whose writes are recorded in the history as done by actor.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor set by WithActor, or "".
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// Open opens a store: "postgres://…" or "postgresql://…" selects PostgreSQL; "sqlite://PATH"
// or a plain file path selects SQLite. It checks that the database is reachable but does
// not migrate.
func Open(ctx context.Context, dsn string) (Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	case strings.HasPrefix(dsn, "sqlite://"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite://"))
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("store: unsupported DSN scheme in %q", dsn)
	case dsn == "":
		return nil, errors.New("store: empty DSN")
	}
	return openSQLite(ctx, dsn)
}

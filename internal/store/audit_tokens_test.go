package store

import (
	"portico.dev/portico/internal/testsupport/pgtest"

	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestAuditAndTokens(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Run("Audit", func(t *testing.T) { testAudit(t, openMigrated(t, d.newDB(t))) })
			t.Run("Tokens", func(t *testing.T) { testTokens(t, openMigrated(t, d.newDB(t))) })
		})
	}
}

func testAudit(t *testing.T, s Store) {
	ctx := context.Background()
	if got, err := s.Audit(ctx, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty Audit = %+v, %v", got, err)
	}
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	want := []AuditEntry{
		{Time: at, Actor: "alice", Role: "editor", Method: "PUT", Path: "/api/v1/routes/r", Status: 201, Objects: []string{"Route/r"}, Revision: 7},
		{Actor: "", Role: "", Method: "GET", Path: "/api/v1/tokens", Status: 401, Message: "unauthorized: missing bearer token"},
		{Actor: "bob", Role: "viewer", Method: "DELETE", Path: "/api/v1/upstreams/u", Status: 403, Objects: []string{"Upstream/team/u", "Route/team/r"}},
	}
	for _, e := range want {
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Audit(ctx, 0, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("Audit = %+v, %v", got, err)
	}
	for i, g := range got {
		w := want[i]
		if i > 0 && g.ID <= got[i-1].ID {
			t.Errorf("ids not increasing: %d then %d", got[i-1].ID, g.ID)
		}
		if g.Actor != w.Actor || g.Role != w.Role || g.Method != w.Method || g.Path != w.Path || g.Status != w.Status ||
			g.Revision != w.Revision || g.Message != w.Message || !slices.Equal(g.Objects, nonNil(w.Objects)) {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
		if g.Time.IsZero() {
			t.Errorf("entry %d has no time", i)
		}
	}
	if !got[0].Time.Equal(at) {
		t.Errorf("time = %v, want %v", got[0].Time, at)
	}
	page, err := s.Audit(ctx, got[0].ID, 1)
	if err != nil || len(page) != 1 || page[0].ID != got[1].ID {
		t.Errorf("Audit(after %d, 1) = %+v, %v", got[0].ID, page, err)
	}
	if page, err := s.Audit(ctx, got[2].ID, 10); err != nil || len(page) != 0 {
		t.Errorf("Audit past the end = %+v, %v", page, err)
	}
}

func testTokens(t *testing.T, s Store) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	ed := Token{Name: "ci", SecretHash: HashSecret("s3cret"), Role: "editor", Namespaces: []string{"a"}, Gateways: []string{"edge"}, Expires: exp}
	if err := s.PutToken(ctx, ed); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, Token{Name: "view", SecretHash: HashSecret("other"), Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, Token{Name: "ci", SecretHash: HashSecret("new"), Role: "viewer"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate name: %v, want ErrConflict", err)
	}
	if err := s.PutToken(ctx, Token{Name: "ci2", SecretHash: HashSecret("s3cret"), Role: "viewer"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate secret: %v, want ErrConflict", err)
	}
	if err := s.PutToken(ctx, Token{Name: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("token without hash: %v, want ErrInvalid", err)
	}
	got, err := s.TokenBySecretHash(ctx, HashSecret("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "ci" || got.Role != "editor" || !slices.Equal(got.Namespaces, []string{"a"}) || !slices.Equal(got.Gateways, []string{"edge"}) ||
		!got.Expires.Equal(exp) || got.Created.IsZero() || got.SecretHash != ed.SecretHash {
		t.Errorf("TokenBySecretHash = %+v", got)
	}
	if _, err := s.TokenBySecretHash(ctx, HashSecret("wrong")); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown secret: %v", err)
	}
	list, err := s.Tokens(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ci" || list[1].Name != "view" || !list[1].Expires.IsZero() || list[1].Namespaces != nil {
		t.Fatalf("Tokens = %+v, %v", list, err)
	}
	if err := s.DeleteToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteToken(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := s.TokenBySecretHash(ctx, HashSecret("s3cret")); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted token still found: %v", err)
	}
	// The secret itself is stored nowhere.
	if HashSecret("s3cret") == "s3cret" || len(HashSecret("x")) != 64 {
		t.Error("HashSecret is not a SHA-256 hex digest")
	}
}

// TestAuditTokensUnavailable: when PostgreSQL goes away under an open store, the audit
// and token methods report ErrUnavailable (the admin API answers 503).
func TestAuditTokensUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := newPostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := pgtest.StartProxy(t, u.Host)
	u.Host = p.Addr()
	s := openMigrated(t, u.String())
	if err := s.AppendAudit(ctx, AuditEntry{Method: "GET", Path: "/"}); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if err := s.AppendAudit(ctx, AuditEntry{Method: "GET", Path: "/"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("AppendAudit without a database: %v", err)
	}
	if _, err := s.TokenBySecretHash(ctx, "x"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("TokenBySecretHash without a database: %v", err)
	}
	if _, err := s.Tokens(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Tokens without a database: %v", err)
	}
}

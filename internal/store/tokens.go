package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Token is an admin API credential. Only the SHA-256 hash of its secret is stored: the
// secret itself is shown once, when the token is created.
type Token struct {
	// Name identifies the token (unique); it is the actor recorded for its writes.
	Name string `json:"name"`
	// SecretHash is HashSecret(secret).
	SecretHash string `json:"-"`
	// Role is admin, editor or viewer.
	Role string `json:"role"`
	// Gateways and Namespaces limit what the token reaches; empty means all.
	Gateways   []string  `json:"gateways,omitempty"`
	Namespaces []string  `json:"namespaces,omitempty"`
	Created    time.Time `json:"created"`
	// Expires is when the token stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
}

// HashSecret returns the hex SHA-256 of a token secret, as stored.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

const tokenCols = "name, secret_hash, role, gateways, namespaces, created_at, expires_at"

// PutToken stores a new token; a name or secret hash already in use is ErrConflict.
func (s *sqlStore) PutToken(ctx context.Context, t Token) error {
	if t.Name == "" || t.SecretHash == "" || t.Role == "" {
		return fmt.Errorf("%w: a token needs a name, a secret hash and a role", ErrInvalid)
	}
	if t.Created.IsZero() {
		t.Created = time.Now()
	}
	gw, err := json.Marshal(nonNil(t.Gateways))
	if err != nil {
		return err
	}
	ns, err := json.Marshal(nonNil(t.Namespaces))
	if err != nil {
		return err
	}
	var expires any
	if !t.Expires.IsZero() {
		expires = s.timeArg(t.Expires.UTC())
	}
	res, err := s.w.ExecContext(ctx, s.q("INSERT INTO api_tokens ("+tokenCols+") VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
		t.Name, t.SecretHash, t.Role, string(gw), string(ns), s.timeArg(t.Created.UTC()), expires)
	if err != nil {
		return classify(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return classify(err)
	} else if n == 0 {
		return fmt.Errorf("%w: token %q already exists", ErrConflict, t.Name)
	}
	return nil
}

// DeleteToken removes a token by name.
func (s *sqlStore) DeleteToken(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, s.q("DELETE FROM api_tokens WHERE name = ?"), name)
	if err != nil {
		return classify(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return classify(err)
	} else if n == 0 {
		return fmt.Errorf("%w: token %q", ErrNotFound, name)
	}
	return nil
}

// Tokens lists every token by name.
func (s *sqlStore) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+tokenCols+" FROM api_tokens ORDER BY name")
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, *t)
	}
	return out, classify(rows.Err())
}

// TokenBySecretHash finds the token whose secret hashes to hash (ErrNotFound if none).
func (s *sqlStore) TokenBySecretHash(ctx context.Context, hash string) (*Token, error) {
	row := s.r.QueryRowContext(ctx, s.q("SELECT "+tokenCols+" FROM api_tokens WHERE secret_hash = ?"), hash)
	t, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no token with that secret", ErrNotFound)
	}
	return t, classify(err)
}

func scanToken(row interface{ Scan(...any) error }) (*Token, error) {
	var t Token
	var gw, ns string
	var created, expires dbTime
	if err := row.Scan(&t.Name, &t.SecretHash, &t.Role, &gw, &ns, &created, &expires); err != nil {
		return nil, err
	}
	t.Created, t.Expires = created.t, expires.t
	if err := json.Unmarshal([]byte(gw), &t.Gateways); err != nil {
		return nil, fmt.Errorf("store: token %s gateways: %w", t.Name, err)
	}
	if err := json.Unmarshal([]byte(ns), &t.Namespaces); err != nil {
		return nil, fmt.Errorf("store: token %s namespaces: %w", t.Name, err)
	}
	if len(t.Gateways) == 0 {
		t.Gateways = nil
	}
	if len(t.Namespaces) == 0 {
		t.Namespaces = nil
	}
	return &t, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

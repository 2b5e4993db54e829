package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AuditEntry is one admin API request worth remembering: every write and every
// denied request.
type AuditEntry struct {
	// ID orders entries; it is assigned by AppendAudit (0 on input).
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	// Actor is the token name ("admin" for the bootstrap token, "" when unauthenticated).
	Actor  string `json:"actor"`
	Role   string `json:"role"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	// Objects are the keys the request named or wrote ("Route/ns/name").
	Objects []string `json:"objects"`
	// Revision is the store revision after the request (0 when unknown).
	Revision int64 `json:"revision"`
	// Message is the error code and message of a failed request, or "dryRun".
	Message string `json:"message,omitempty"`
}

// maxAuditPage caps one Audit call.
const maxAuditPage = 1000

// AppendAudit records one entry; Time defaults to now.
func (s *sqlStore) AppendAudit(ctx context.Context, e AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	objs := e.Objects
	if objs == nil {
		objs = []string{}
	}
	b, err := json.Marshal(objs)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, s.q("INSERT INTO audit_log (at, actor, role, method, path, status, objects, revision, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		s.timeArg(e.Time.UTC()), e.Actor, e.Role, e.Method, e.Path, e.Status, string(b), e.Revision, e.Message)
	return classify(err)
}

// Audit returns up to limit entries with an ID above after, oldest first. A limit of
// zero or less, or above 1000, means 1000.
func (s *sqlStore) Audit(ctx context.Context, after int64, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > maxAuditPage {
		limit = maxAuditPage
	}
	rows, err := s.r.QueryContext(ctx, s.q("SELECT id, at, actor, role, method, path, status, objects, revision, message FROM audit_log WHERE id > ? ORDER BY id LIMIT ?"),
		after, limit)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at dbTime
		var objs string
		var status int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Role, &e.Method, &e.Path, &status, &objs, &e.Revision, &e.Message); err != nil {
			return nil, classify(err)
		}
		e.Time, e.Status = at.t, int(status)
		if err := json.Unmarshal([]byte(objs), &e.Objects); err != nil {
			return nil, fmt.Errorf("store: audit entry %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, classify(rows.Err())
}

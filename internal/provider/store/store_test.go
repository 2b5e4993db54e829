package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"portico.dev/portico/internal/resource"
	db "portico.dev/portico/internal/store"
)

type published struct {
	res *resource.Resources
	rev int64
}

func openSQLite(t *testing.T) db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "portico.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func route(name, upstream string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"portico.dev/v1alpha1","kind":"Route","metadata":{"name":%q},"spec":{"backends":[{"upstream":%q}]}}`, name, upstream))
}

// waitFor returns the first published state that satisfies ok.
func waitFor(t *testing.T, ch <-chan published, what string, ok func(published) bool) published {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p := <-ch:
			if ok(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func routeNames(res *resource.Resources) []string {
	var out []string
	for _, r := range res.Routes {
		out = append(out, r.Metadata.Name+"->"+r.Spec.Backends[0].Upstream)
	}
	return out
}

func TestMirrorFollowsWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openSQLite(t)
	if _, err := s.Put(ctx, route("b", "u1"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, route("a", "u1"), ""); err != nil {
		t.Fatal(err)
	}
	ch := make(chan published, 100)
	p := &Provider{Store: s, Publish: func(res *resource.Resources, rev int64) { ch <- published{res, rev} }}
	go p.Run(ctx)

	first := waitFor(t, ch, "initial state", func(p published) bool { return len(p.res.Routes) == 2 })
	if got := fmt.Sprint(routeNames(first.res)); got != "[a->u1 b->u1]" {
		t.Fatalf("initial routes (sorted by name): %s", got)
	}

	obj, err := s.Put(ctx, route("a", "u2"), "")
	if err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, ch, "update", func(p published) bool { return p.rev >= obj.Revision })
	if names := fmt.Sprint(routeNames(got.res)); names != "[a->u2 b->u1]" {
		t.Fatalf("after update: %s", names)
	}
	if err := s.Delete(ctx, "Route", "", "b", ""); err != nil {
		t.Fatal(err)
	}
	rev, _ := s.Revision(ctx)
	got = waitFor(t, ch, "delete", func(p published) bool { return p.rev >= rev })
	if names := fmt.Sprint(routeNames(got.res)); names != "[a->u2]" {
		t.Fatalf("after delete: %s", names)
	}
}

// TestLargeBurstReadsEverything: an apply larger than the per-object threshold is
// mirrored by one full read and still ends in the exact state.
func TestLargeBurstReadsEverything(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openSQLite(t)
	ch := make(chan published, 100)
	p := &Provider{Store: s, Publish: func(res *resource.Resources, rev int64) { ch <- published{res, rev} }}
	go p.Run(ctx)
	waitFor(t, ch, "empty state", func(p published) bool { return true })

	var ops []db.Op
	for i := range fullReadAbove + 50 {
		ops = append(ops, db.Op{Object: route(fmt.Sprintf("r%04d", i), "u")})
	}
	if _, err := s.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	rev, _ := s.Revision(ctx)
	got := waitFor(t, ch, "burst", func(p published) bool { return p.rev >= rev })
	if len(got.res.Routes) != fullReadAbove+50 {
		t.Fatalf("mirrored %d routes, want %d", len(got.res.Routes), fullReadAbove+50)
	}
}

// TestRetriesWhileTheStoreIsDown: errors go to Reject and the provider keeps trying.
func TestRetriesWhileTheStoreIsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openSQLite(t)
	s.Close()
	errs := make(chan error, 10)
	p := &Provider{Store: s, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		Reject: func(err error) { errs <- err }}
	go p.Run(ctx)
	for range 2 {
		select {
		case <-errs:
		case <-time.After(5 * time.Second):
			t.Fatal("no error reported for a closed store")
		}
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestBatchApply runs the multi-row path on both drivers: creates, updates with
// preconditions, deletes, the history it leaves, and all-or-nothing failures.
func TestBatchApply(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			ctx := WithActor(context.Background(), "batcher")
			s := openMigrated(t, d.newDB(t))
			var ops []Op
			for i := range 20 {
				ops = append(ops, Op{Object: route(fmt.Sprintf("r%02d", i), "a.example")})
			}
			created, err := s.Apply(ctx, ops)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range created {
				if o == nil || o.Key.Name != fmt.Sprintf("r%02d", i) || o.Revision != created[0].Revision+int64(i) {
					t.Fatalf("result %d: %+v", i, o)
				}
			}
			// Mixed: update r00 with its RV, delete r01, create r20, update r02 blindly, ...
			mixed := []Op{
				{Object: route("r00", "b.example"), ExpectedResourceVersion: created[0].ResourceVersion},
				{Delete: true, Key: keyOf("Route", "", "r01"), ExpectedResourceVersion: created[1].ResourceVersion},
				{Object: route("r20", "c.example")},
				{Object: route("r02", "d.example")},
			}
			for i := 3; i < 10; i++ {
				mixed = append(mixed, Op{Delete: true, Key: keyOf("Route", "", fmt.Sprintf("r%02d", i))})
			}
			before, _ := s.Revision(ctx)
			res, err := s.Apply(ctx, mixed)
			if err != nil {
				t.Fatal(err)
			}
			if res[1] != nil || res[0] == nil || !strings.Contains(string(res[0].JSON), "b.example") || res[0].Created != created[0].Created {
				t.Fatalf("mixed results: %+v", res)
			}
			if after, _ := s.Revision(ctx); after != before+int64(len(mixed)) {
				t.Errorf("revision %d -> %d for %d ops", before, after, len(mixed))
			}
			all, _ := s.List(ctx, "Route", "")
			if len(all) != 20-8+1 {
				t.Errorf("%d routes after the mixed apply, want 13", len(all))
			}
			hist, err := s.History(ctx, "Route", "", "r01")
			if err != nil || len(hist) != 2 || hist[1].Operation != OpDelete || hist[1].Actor != "batcher" || hist[0].Operation != OpCreate {
				t.Fatalf("history of r01: %+v %v", hist, err)
			}
			if hist, _ := s.History(ctx, "Route", "", "r00"); len(hist) != 2 || hist[1].Operation != OpUpdate {
				t.Fatalf("history of r00: %+v", hist)
			}

			// One stale precondition or one missing delete: nothing of the batch is written.
			rev, _ := s.Revision(ctx)
			for name, bad := range map[string]Op{
				"stale":          {Object: route("r00", "z.example"), ExpectedResourceVersion: created[0].ResourceVersion},
				"delete missing": {Delete: true, Key: keyOf("Route", "", "nope")},
			} {
				var ops []Op
				for i := range 10 {
					ops = append(ops, Op{Object: route(fmt.Sprintf("n%02d", i), "n.example")})
				}
				ops = append(ops, bad)
				_, err := s.Apply(ctx, ops)
				if err == nil || !strings.Contains(err.Error(), "item 11") {
					t.Fatalf("%s: err = %v, want it to name item 11", name, err)
				}
				if name == "stale" && !errors.Is(err, ErrConflict) || name != "stale" && !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: wrong error class: %v", name, err)
				}
				if now, _ := s.Revision(ctx); now != rev {
					t.Errorf("%s: revision moved %d -> %d", name, rev, now)
				}
				if _, err := s.Get(ctx, "Route", "", "n00"); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: part of a failed batch was stored", name)
				}
			}
		})
	}
}

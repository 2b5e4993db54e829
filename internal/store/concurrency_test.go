package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentWriters: parallel writers never lose or reorder a change in the feed.
func TestConcurrentWriters(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := openMigrated(t, d.newDB(t))
			ch, err := s.Changes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			const writers, each = 8, 20
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						if _, err := s.Put(ctx, route(fmt.Sprintf("w%d-%d", w, i)), ""); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			got := collect(t, ch, writers*each)
			for i := 1; i < len(got); i++ {
				if got[i].Revision != got[i-1].Revision+1 {
					t.Fatalf("gap or reorder at %d: %d then %d", i, got[i-1].Revision, got[i].Revision)
				}
			}
		})
	}
}

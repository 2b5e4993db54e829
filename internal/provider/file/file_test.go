package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/resource"
)

func upstreamDoc(name string) string {
	return fmt.Sprintf("apiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: %s}\nspec:\n  endpoints: [{address: \"127.0.0.1:1\"}]\n", name)
}

type recorder struct {
	mu        sync.Mutex
	published []*resource.Resources
	rejected  []error
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.published), len(r.rejected)
}

func start(t *testing.T, path string, reload chan struct{}) *recorder {
	t.Helper()
	rec := &recorder{}
	p := &Provider{
		Path: path, Debounce: 100 * time.Millisecond, Reload: reload,
		Publish: func(r *resource.Resources) { rec.mu.Lock(); rec.published = append(rec.published, r); rec.mu.Unlock() },
		Reject:  func(err error) { rec.mu.Lock(); rec.rejected = append(rec.rejected, err); rec.mu.Unlock() },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return rec
}

func waitCounts(t *testing.T, rec *recorder, pub, rej int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, r := rec.counts()
		if p == pub && r == rej {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("published %d rejected %d, want %d and %d", p, r, pub, rej)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBurstOfWritesCostsOneReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	os.WriteFile(path, []byte(upstreamDoc("u0")), 0o644)
	rec := start(t, path, nil)
	waitCounts(t, rec, 1, 0)
	for i := 1; i <= 20; i++ {
		os.WriteFile(path, []byte(upstreamDoc(fmt.Sprintf("u%d", i))), 0o644)
		time.Sleep(5 * time.Millisecond) // well inside the debounce window
	}
	waitCounts(t, rec, 2, 0)
	time.Sleep(300 * time.Millisecond)
	if p, _ := rec.counts(); p != 2 {
		t.Fatalf("a burst of 20 writes caused %d reloads, want 1", p-1)
	}
	rec.mu.Lock()
	last := rec.published[1]
	rec.mu.Unlock()
	if last.Upstreams[0].Metadata.Name != "u20" {
		t.Fatalf("reload saw %s, want the last write u20", last.Upstreams[0].Metadata.Name)
	}
}

func TestBadFileIsRejectedAndFolderIsWatched(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(upstreamDoc("a")), 0o644)
	reload := make(chan struct{}, 1)
	rec := start(t, dir, reload)
	waitCounts(t, rec, 1, 0)

	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("kind: Upstream\nmetadata: {name: b\n"), 0o644)
	waitCounts(t, rec, 1, 1)
	rec.mu.Lock()
	msg := rec.rejected[0].Error()
	rec.mu.Unlock()
	if !strings.Contains(msg, "b.yaml") {
		t.Fatalf("rejection does not name the file: %s", msg)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(upstreamDoc("b")), 0o644)
	waitCounts(t, rec, 2, 1)

	reload <- struct{}{} // SIGHUP-style forced reload
	waitCounts(t, rec, 3, 1)
}

// TestUnrelatedFilesBesideAConfigFileDoNotReload guards against a reload loop: a log file
// written next to the config must not trigger reloads.
func TestUnrelatedFilesBesideAConfigFileDoNotReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "portico.yaml")
	os.WriteFile(path, []byte(upstreamDoc("a")), 0o644)
	rec := start(t, path, nil)
	waitCounts(t, rec, 1, 0)
	for i := 0; i < 5; i++ {
		os.WriteFile(filepath.Join(dir, "portico.log"), []byte(fmt.Sprint(i)), 0o644)
		time.Sleep(30 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if p, r := rec.counts(); p != 1 || r != 0 {
		t.Fatalf("writes to a log beside the config caused %d loads", p+r-1)
	}
	os.WriteFile(path, []byte(upstreamDoc("b")), 0o644)
	waitCounts(t, rec, 2, 0)
}

// Package file is the declarative-file source: it loads a YAML/JSON file or folder into
// the one input model, watches it, and publishes a new Resources value after changes
// settle (debounced). A file that fails to load is reported and nothing is published,
// so the last good configuration keeps serving.
package file

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"portico.dev/portico/internal/resource"
)

// DefaultDebounce is how long the provider waits after the last file event before
// reloading: editors write files in several steps, and a burst should cost one reload.
const DefaultDebounce = 200 * time.Millisecond

// Provider watches Path and reports every successful load through Publish and every
// failure through Reject.
type Provider struct {
	Path     string
	Debounce time.Duration
	Logger   *slog.Logger
	// Publish receives each successfully loaded set.
	Publish func(*resource.Resources)
	// Reject receives each load error (it names file, document, object and field).
	Reject func(error)
	// Reload, when not nil, forces a reload on each receive (e.g. on SIGHUP).
	Reload <-chan struct{}
}

// LoadOnce loads Path and publishes it, or rejects it.
func (p *Provider) LoadOnce() error {
	res, err := resource.Load(p.Path)
	if err != nil {
		if p.Reject != nil {
			p.Reject(err)
		}
		return err
	}
	if p.Publish != nil {
		p.Publish(res)
	}
	return nil
}

// Run loads once, then watches until ctx ends. It returns an error only when the
// watch cannot be set up.
func (p *Provider) Run(ctx context.Context) error {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer watcher.Close()
	if err := watcher.Add(p.watchDir()); err != nil {
		return err
	}
	_ = p.LoadOnce() // a bad first file is reported by Reject; keep watching for a fix

	debounce := p.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watcher.Events:
			if !ok {
				return nil
			}
			if p.relevant(ev.Name) {
				timer.Reset(debounce)
			}
		case werr, ok := <-watcher.Errors:
			if !ok {
				return nil
			}
			p.logger().Warn("file watch error", "path", p.Path, "error", werr)
			timer.Reset(debounce)
		case <-p.Reload:
			timer.Reset(0)
		case <-timer.C:
			if err := p.LoadOnce(); err == nil {
				p.logger().Info("configuration reloaded", "path", p.Path)
			}
		}
	}
}

// watchDir is the folder to watch: the folder itself, or the file's folder, because
// editors and `kubectl`-style tools replace files by renaming over them.
func (p *Provider) watchDir() string {
	if info, err := os.Stat(p.Path); err == nil && info.IsDir() {
		return p.Path
	}
	return filepath.Dir(p.Path)
}

// relevant says whether an event should cause a reload. In a folder: its config files and
// certificate files. For a single file: that file and certificate files beside it, but not
// other files (a log written next to the config must not cause reloads).
func (p *Provider) relevant(name string) bool {
	switch filepath.Ext(name) {
	case ".pem", ".crt", ".key":
		return true
	}
	if info, err := os.Stat(p.Path); err == nil && info.IsDir() {
		switch filepath.Ext(name) {
		case ".yaml", ".yml", ".json":
			return true
		}
		return false
	}
	return filepath.Clean(name) == filepath.Clean(p.Path)
}

func (p *Provider) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// Package examples embeds the quick-start configuration so `portico run` works with no
// files at all.
package examples

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed quickstart.yaml certs/quickstart.crt certs/quickstart.key
var quickstart embed.FS

// WriteQuickstart writes the quick-start files under dir (existing files are kept, so a
// user's edits survive restarts) and returns the path of quickstart.yaml.
func WriteQuickstart(dir string) (string, error) {
	err := fs.WalkDir(quickstart, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		dst := filepath.Join(dir, path)
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		data, err := quickstart.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
	return filepath.Join(dir, "quickstart.yaml"), err
}

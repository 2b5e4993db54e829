package distribute

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"portico.dev/portico/internal/ir"
)

// LoadCache reads the last good snapshot a data plane wrote. A file that does not decode,
// or whose content does not hash to its version, is an error naming the file; a missing
// file is an error satisfying errors.Is(err, fs.ErrNotExist).
func LoadCache(path string) (*ir.Snapshot, error) {
	s, _, err := loadCache(path)
	return s, err
}

// loadCache is LoadCache, also returning the snapshot's items.
func loadCache(path string) (*ir.Snapshot, *snapshotItems, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot cache: %w", err)
	}
	var s ir.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, fmt.Errorf("snapshot cache %s: corrupt: %w", path, err)
	}
	stored := s.Version
	items := itemsOf(&s)
	s.Version = items.digest().Version()
	if stored != s.Version && stored != legacyVersion(&s) {
		return nil, nil, fmt.Errorf("snapshot cache %s: corrupt: content hashes to version %q, file says %q", path, s.Version, stored)
	}
	return &s, items, nil
}

// legacyVersion is the version scheme before per-item hashes (the first 8 bytes of the
// SHA-256 of the snapshot's JSON without its version), so that a cache file written by
// an older data plane still starts a newer one; the snapshot then carries its version
// in the current scheme.
func legacyVersion(s *ir.Snapshot) string {
	c := *s
	c.Version = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// writeCache stores a snapshot as the data plane's last good one, from its items (nil:
// encoded here), so that only items that changed since the last write are encoded.
func writeCache(path string, s *ir.Snapshot, items *snapshotItems) error {
	if items == nil || !items.fits(s) {
		items = itemsOf(s)
	}
	b, err := items.encode(s.Version)
	if err != nil {
		return fmt.Errorf("snapshot cache %s: %w", path, err)
	}
	return writeFileAtomic(path, b)
}

// writeFileAtomic writes data to path with mode 0600 through a temporary file in the same
// folder, synced and renamed over path, so a reader sees the old or the new content whole.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

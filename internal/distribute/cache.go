package distribute

import (
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
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot cache: %w", err)
	}
	var s ir.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot cache %s: corrupt: %w", path, err)
	}
	stored := s.Version
	s.ComputeVersion()
	if stored != s.Version {
		return nil, fmt.Errorf("snapshot cache %s: corrupt: content hashes to version %q, file says %q", path, s.Version, stored)
	}
	return &s, nil
}

// writeCache stores a snapshot as the data plane's last good one.
func writeCache(path string, s *ir.Snapshot) error {
	b, err := json.Marshal(s)
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

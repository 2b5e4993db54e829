package pki

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// writeAtomic writes data to path with mode 0600: into a temporary file in the same
// folder, synced, then renamed over path, so readers see the old or the new content,
// never a mix.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // make the rename durable; not every file system supports it
		_ = d.Close()
	}
	return nil
}

// readExisting reads path. It returns exists=false (and no error) when there is no such
// file, and an error naming the file when it exists but is not a readable regular file.
func readExisting(path string) (data []byte, exists bool, err error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, true, fmt.Errorf("%s: not a regular file", path)
	}
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, true, fmt.Errorf("%s: unreadable: %w", path, err)
	}
	return data, true, nil
}

// PermError reports a secret file that users other than its owner may access.
type PermError struct {
	// Path is the file.
	Path string
	// Mode is its permission bits.
	Mode fs.FileMode
}

// Error implements error.
func (e *PermError) Error() string {
	return fmt.Sprintf("%s: permissions %04o let other users read it; run chmod 600 %s", e.Path, e.Mode.Perm(), e.Path)
}

// CheckPerm returns a *PermError when path can be read or written by its group or by
// other users (any of the 0077 bits set), and an error naming the file when it cannot
// be examined. Callers decide whether that is fatal or a warning.
func CheckPerm(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return &PermError{Path: path, Mode: info.Mode().Perm()}
	}
	return nil
}

// GenerateToken returns a new secret: 32 random bytes, base64url without padding.
func GenerateToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ReadToken reads a token file and returns the token with surrounding white space
// removed. The file must hold exactly one non-empty token; errors name the file. It
// does not look at permissions: see CheckPerm.
func ReadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	tok, err := parseToken(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return tok, nil
}

// parseToken checks the content of a token file.
func parseToken(data []byte) (string, error) {
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", errors.New("the token file is empty")
	}
	for _, r := range tok {
		if r <= ' ' || r == 0x7f {
			return "", errors.New("the token file holds more than one line or a control character")
		}
	}
	return tok, nil
}

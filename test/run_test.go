package test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunPrintsAdminURLAndToken: `portico run` (what `make run` starts) creates the admin
// token on first start, prints the admin URL and that token, loads the quick start into
// the store, and the printed token opens the admin API.
func TestRunPrintsAdminURLAndToken(t *testing.T) {
	dir := t.TempDir()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startBg(t, "portico run", "run", "--data-dir", filepath.Join(dir, "data"), "--admin-addr", admin,
		"--xds-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--ops-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--demo-backends=", "--access-log", "off", "--listen-address", "127.0.0.1")
	tokenLine := regexp.MustCompile(`token:\s+(\S+)\s+\(in (\S+)\)`)
	var printed []string
	waitCond(t, 20*time.Second, p, "run prints the admin URL and token", func() (bool, string) {
		out := p.out.String()
		printed = tokenLine.FindStringSubmatch(out)
		return printed != nil && strings.Contains(out, "admin API: http://"+admin+"/api/v1"), out
	})
	stored, err := os.ReadFile(printed[2])
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(stored)) != printed[1] {
		t.Fatalf("printed token %q is not the one in %s", printed[1], printed[2])
	}
	if fi, err := os.Stat(printed[2]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, %v; want 0600", printed[2], fi.Mode().Perm(), err)
	}
	req, _ := http.NewRequest("GET", "http://"+admin+"/api/v1/routes/echo", nil)
	req.Header.Set("Authorization", "Bearer "+printed[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET the quick start's route with the printed token: %v %v", resp, err)
	}
	resp.Body.Close()
}

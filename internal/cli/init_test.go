package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portico.dev/portico/internal/pki"
)

// runInitCLI runs the root command with args and returns stdout, stderr and the error.
func runInitCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestInitCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out, _, err := runInitCLI(t, "init", dir, "--hosts", "cp.example.com,10.9.8.7", "--admin-addr", "127.0.0.1:9999")
	if err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, pki.AdminTokenFile)
	for _, want := range []string{"created  " + filepath.Join(dir, pki.CACertFile), "admin token: " + token} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := pki.CheckPerm(token); err != nil {
		t.Error(err)
	}
	client, _ := os.ReadFile(filepath.Join(dir, pki.ClientConfigFile))
	if !strings.Contains(string(client), "server: http://127.0.0.1:9999") {
		t.Errorf("client.yaml:\n%s", client)
	}
	cfg, err := pki.ServerTLS(filepath.Join(dir, pki.ControlPlaneCertFile), filepath.Join(dir, pki.ControlPlaneKeyFile), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := cfg.GetCertificate(nil)
	if err := leaf.Leaf.VerifyHostname("cp.example.com"); err != nil {
		t.Error(err)
	}

	// Again, without --admin-addr: nothing changes, nothing is warned about.
	before, _ := os.ReadFile(token)
	out, stderr, err := runInitCLI(t, "init", dir)
	if err != nil || !strings.Contains(out, "nothing changed") || stderr != "" || strings.Contains(out, "created") {
		t.Errorf("second run: %v\n%s\n%s", err, out, stderr)
	}
	// Other hosts are reported, not applied.
	_, stderr, err = runInitCLI(t, "init", dir, "--hosts", "other.example")
	if err != nil || !strings.Contains(stderr, "warning:") || !strings.Contains(stderr, "--rotate") {
		t.Errorf("hosts change: %v %q", err, stderr)
	}
	out, _, err = runInitCLI(t, "init", dir, "--rotate", "--hosts", "other.example")
	if err != nil || !strings.Contains(out, "renewed  "+filepath.Join(dir, pki.ControlPlaneCertFile)) {
		t.Errorf("rotate: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(token); !bytes.Equal(before, after) {
		t.Error("--rotate changed the admin token")
	}
	out, _, err = runInitCLI(t, "init", dir, "--rotate-tokens")
	if after, _ := os.ReadFile(token); err != nil || bytes.Equal(before, after) || !strings.Contains(out, "renewed  "+token) {
		t.Errorf("--rotate-tokens: %v\n%s", err, out)
	}

	// A corrupt file stops the command with its name, and stays as it was.
	caPath := filepath.Join(dir, pki.CACertFile)
	if err := os.WriteFile(caPath, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runInitCLI(t, "init", dir); err == nil || !strings.Contains(err.Error(), caPath) {
		t.Errorf("corrupt ca.crt: %v", err)
	}
	if data, _ := os.ReadFile(caPath); string(data) != "junk" {
		t.Error("corrupt ca.crt overwritten")
	}
	if _, _, err := runInitCLI(t, "init"); err == nil {
		t.Error("init without DIR accepted")
	}
}

package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// snapshot reads every managed file of dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = data
	}
	return out
}

func mustInit(t *testing.T, dir string, opts InitOptions) *Result {
	t.Helper()
	res, err := Init(dir, opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return res
}

func actions(res *Result) map[string]Action {
	out := map[string]Action{}
	for _, f := range res.Files {
		out[f.Name] = f.Action
	}
	return out
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCert(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verify(t *testing.T, dir string, cert *x509.Certificate, usage x509.ExtKeyUsage) error {
	t.Helper()
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestInitCreatesEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	res := mustInit(t, dir, InitOptions{Hosts: []string{"CP.Example.com", "10.1.2.3"}})
	if !res.Changed() || len(res.Warnings) != 0 {
		t.Fatalf("changed=%v warnings=%v", res.Changed(), res.Warnings)
	}
	if res.AdminTokenFile != filepath.Join(dir, AdminTokenFile) {
		t.Errorf("AdminTokenFile = %s", res.AdminTokenFile)
	}
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode: %v %v", info.Mode(), err)
	}
	for _, name := range files {
		if a := actions(res)[name]; a != Created {
			t.Errorf("%s: %s, want created", name, a)
		}
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", name, info.Mode(), err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(files) {
		t.Errorf("%d entries in the folder (temporary files left?), want %d", len(entries), len(files))
	}

	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() || !ca.Cert.IsCA {
		t.Fatalf("CA key %T, IsCA %v", ca.Cert.PublicKey, ca.Cert.IsCA)
	}
	if d := time.Until(ca.Cert.NotAfter); d < CAValidity-time.Hour || d > CAValidity {
		t.Errorf("CA valid for %v", d)
	}

	cp := readCert(t, filepath.Join(dir, ControlPlaneCertFile))
	if err := verify(t, dir, cp, x509.ExtKeyUsageServerAuth); err != nil {
		t.Errorf("control-plane cert: %v", err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "cp.example.com", "10.1.2.3"} {
		if err := cp.VerifyHostname(h); err != nil {
			t.Errorf("control-plane cert: %v", err)
		}
	}
	if d := time.Until(cp.NotAfter); d < LeafValidity-time.Hour || d > LeafValidity {
		t.Errorf("control-plane cert valid for %v", d)
	}

	dp := readCert(t, filepath.Join(dir, DataPlaneCertFile))
	if err := verify(t, dir, dp, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("data-plane cert: %v", err)
	}
	if err := verify(t, dir, dp, x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("data-plane cert verifies for serverAuth")
	}
	if dp.Subject.CommonName != "dataplane" || !slices.Equal(dp.Subject.Organization, []string{"portico:dataplanes"}) {
		t.Errorf("data-plane subject %v", dp.Subject)
	}

	for _, name := range []string{AdminTokenFile, BootstrapTokenFile} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		tok := strings.TrimSuffix(string(data), "\n")
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) != 32 || strings.Count(string(data), "\n") != 1 {
			t.Errorf("%s = %q (%v)", name, data, err)
		}
	}
	a, _ := ReadToken(filepath.Join(dir, AdminTokenFile))
	b, _ := ReadToken(filepath.Join(dir, BootstrapTokenFile))
	if a == b {
		t.Error("admin and bootstrap tokens are equal")
	}
}

func TestInitIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Hosts: []string{"cp.example.com"}})
	before := snapshot(t, dir)
	for _, opts := range []InitOptions{{}, {Hosts: []string{"cp.example.com"}}} {
		res := mustInit(t, dir, opts)
		if res.Changed() || len(res.Warnings) != 0 {
			t.Fatalf("second Init changed=%v warnings=%v", res.Changed(), res.Warnings)
		}
		for name, a := range actions(res) {
			if a != Kept {
				t.Errorf("%s: %s, want kept", name, a)
			}
		}
		for name, data := range snapshot(t, dir) {
			if !bytes.Equal(data, before[name]) {
				t.Errorf("%s changed", name)
			}
		}
	}
}

func TestInitRotateKeepsCAAndTokens(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Hosts: []string{"cp.example.com"}})
	before := snapshot(t, dir)
	res := mustInit(t, dir, InitOptions{Rotate: true})
	after := snapshot(t, dir)
	for _, name := range []string{ControlPlaneCertFile, ControlPlaneKeyFile, DataPlaneCertFile, DataPlaneKeyFile} {
		if bytes.Equal(before[name], after[name]) || actions(res)[name] != Renewed {
			t.Errorf("%s not renewed (%s)", name, actions(res)[name])
		}
	}
	for _, name := range []string{CACertFile, CAKeyFile, AdminTokenFile, BootstrapTokenFile, KubeconfigFile, ClientConfigFile} {
		if !bytes.Equal(before[name], after[name]) || actions(res)[name] != Kept {
			t.Errorf("%s changed (%s)", name, actions(res)[name])
		}
	}
	cp := readCert(t, filepath.Join(dir, ControlPlaneCertFile))
	if err := verify(t, dir, cp, x509.ExtKeyUsageServerAuth); err != nil {
		t.Error(err)
	}
	if err := cp.VerifyHostname("cp.example.com"); err != nil {
		t.Errorf("renewal without --hosts dropped a name: %v", err)
	}
	if err := verify(t, dir, readCert(t, filepath.Join(dir, DataPlaneCertFile)), x509.ExtKeyUsageClientAuth); err != nil {
		t.Error(err)
	}

	// --rotate-tokens alone: new tokens, kubeconfig follows, certificates stay.
	before = after
	res = mustInit(t, dir, InitOptions{RotateTokens: true})
	after = snapshot(t, dir)
	for _, name := range []string{AdminTokenFile, BootstrapTokenFile, KubeconfigFile} {
		if bytes.Equal(before[name], after[name]) {
			t.Errorf("%s not rotated", name)
		}
	}
	if actions(res)[KubeconfigFile] != Updated || !bytes.Equal(before[ControlPlaneCertFile], after[ControlPlaneCertFile]) {
		t.Errorf("actions %v", actions(res))
	}
	kc, err := parseKubeconfig(after[KubeconfigFile])
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := ReadToken(filepath.Join(dir, AdminTokenFile)); kc.Users[0].User.Token != tok {
		t.Error("kubeconfig does not carry the new admin token")
	}
}

func TestInitRotateCAChangesEverything(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	oldCA, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	res := mustInit(t, dir, InitOptions{RotateCA: true})
	after := snapshot(t, dir)
	for _, name := range files {
		if name == ClientConfigFile {
			continue // names files and the server only
		}
		if bytes.Equal(before[name], after[name]) || actions(res)[name] == Kept {
			t.Errorf("%s not replaced (%s)", name, actions(res)[name])
		}
	}
	for _, name := range []string{ControlPlaneCertFile, DataPlaneCertFile} {
		c := readCert(t, filepath.Join(dir, name))
		if _, err := c.Verify(x509.VerifyOptions{Roots: oldCA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
			t.Errorf("%s still verifies against the old CA", name)
		}
		if err := verify(t, dir, c, x509.ExtKeyUsageAny); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestInitRefusesCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	before := snapshot(t, dir)
	garbage := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
	for _, tc := range []struct {
		name string
		data []byte
		opts InitOptions
	}{
		{CACertFile, garbage, InitOptions{}},
		{CACertFile, garbage, InitOptions{Rotate: true}},
		{CAKeyFile, []byte("nonsense"), InitOptions{RotateTokens: true}},
		{ControlPlaneCertFile, garbage, InitOptions{}},
		{DataPlaneKeyFile, before[ControlPlaneKeyFile], InitOptions{}}, // a key of another certificate
		{AdminTokenFile, []byte("\n\n"), InitOptions{}},
		{BootstrapTokenFile, []byte("two\nlines\n"), InitOptions{Rotate: true}},
		{KubeconfigFile, []byte("clusters: [unclosed"), InitOptions{}},
		{ClientConfigFile, []byte("- a list\n"), InitOptions{}},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Init(dir, tc.opts)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("corrupt %s: error %v does not name the file", tc.name, err)
		}
		if data, _ := os.ReadFile(path); !bytes.Equal(data, tc.data) {
			t.Errorf("corrupt %s was overwritten", tc.name)
		}
		for name, data := range snapshot(t, dir) {
			if name != tc.name && !bytes.Equal(data, before[name]) {
				t.Errorf("corrupt %s: %s was changed", tc.name, name)
			}
		}
		if err := os.WriteFile(path, before[tc.name], 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Rotation replaces a corrupt file of what it rotates.
	path := filepath.Join(dir, ControlPlaneCertFile)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	mustInit(t, dir, InitOptions{Rotate: true})
	if err := verify(t, dir, readCert(t, path), x509.ExtKeyUsageServerAuth); err != nil {
		t.Error(err)
	}
}

func TestInitRefusesMissingCA(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	keyPath := filepath.Join(dir, CAKeyFile)
	if err := os.Rename(keyPath, keyPath+".bak"); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, InitOptions{}); err == nil || !strings.Contains(err.Error(), keyPath) {
		t.Errorf("missing ca.key: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	// Both CA files gone but certificates signed by it remain: no silent new CA.
	if _, err := Init(dir, InitOptions{}); err == nil || !strings.Contains(err.Error(), "--rotate-ca") {
		t.Errorf("missing CA: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CACertFile)); err == nil {
		t.Error("a new CA was written")
	}
	mustInit(t, dir, InitOptions{RotateCA: true})
}

func TestInitFixesPermissions(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tokenPath := filepath.Join(dir, AdminTokenFile)
	if err := os.Chmod(tokenPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckPerm(tokenPath); err == nil {
		t.Error("CheckPerm accepts 0644")
	}
	before := snapshot(t, dir)
	res := mustInit(t, dir, InitOptions{})
	if !res.Changed() || len(res.Notes) != 1 {
		t.Errorf("notes %v", res.Notes)
	}
	for _, f := range res.Files {
		if (f.Name == AdminTokenFile) != strings.Contains(f.Note, "0644") || f.Action != Kept {
			t.Errorf("%s: %s %q", f.Name, f.Action, f.Note)
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", info.Mode())
	}
	if err := CheckPerm(tokenPath); err != nil {
		t.Error(err)
	}
	if !maps.EqualFunc(before, snapshot(t, dir), bytes.Equal) {
		t.Error("content changed")
	}
}

func TestInitWarnsWithoutChanging(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A control-plane certificate that expires in 10 days.
	keyData, _ := os.ReadFile(filepath.Join(dir, ControlPlaneKeyFile))
	key, err := parseKey(keyData)
	if err != nil {
		t.Fatal(err)
	}
	short, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: ControlPlaneCommonName},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, key.Public(), time.Now(), 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(filepath.Join(dir, ControlPlaneCertFile), short); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	res := mustInit(t, dir, InitOptions{Hosts: []string{"new.example.com"}, AdminAddr: "10.0.0.1:9080"})
	joined := strings.Join(res.Warnings, "\n")
	for _, want := range []string{"expires on", "new.example.com", "client.yaml names server http://127.0.0.1:9080", "kubeconfig differs"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q lack %q", joined, want)
		}
	}
	if res.Changed() || !maps.EqualFunc(before, snapshot(t, dir), bytes.Equal) {
		t.Error("warnings changed files")
	}
	// --rotate acts on them: the new certificate carries the hosts and a full year.
	mustInit(t, dir, InitOptions{Hosts: []string{"new.example.com"}, Rotate: true})
	cp := readCert(t, filepath.Join(dir, ControlPlaneCertFile))
	if err := cp.VerifyHostname("new.example.com"); err != nil || time.Until(cp.NotAfter) < LeafValidity-time.Hour {
		t.Errorf("renewed cert: %v, until %v", err, cp.NotAfter)
	}
	if res := mustInit(t, dir, InitOptions{Hosts: []string{"new.example.com"}}); len(res.Warnings) != 0 {
		t.Errorf("after rotation: %v", res.Warnings)
	}
}

func TestKubeconfigAndClientConfig(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{AdminAddr: "0.0.0.0:9555"})
	var kc map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, KubeconfigFile))
	if err := yaml.Unmarshal(data, &kc); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	token, _ := ReadToken(filepath.Join(dir, AdminTokenFile))
	cluster := kc["clusters"].([]any)[0].(map[string]any)
	user := kc["users"].([]any)[0].(map[string]any)
	ctx := kc["contexts"].([]any)[0].(map[string]any)
	caData, _ := base64.StdEncoding.DecodeString(cluster["cluster"].(map[string]any)["certificate-authority-data"].(string))
	checks := map[string][2]any{
		"apiVersion":      {kc["apiVersion"], "v1"},
		"kind":            {kc["kind"], "Config"},
		"current-context": {kc["current-context"], "portico"},
		"cluster name":    {cluster["name"], "portico"},
		"server":          {cluster["cluster"].(map[string]any)["server"], "https://127.0.0.1:9555/clusters"},
		"ca":              {string(caData), string(caPEM)},
		"user token":      {user["user"].(map[string]any)["token"], token},
		"context cluster": {ctx["context"].(map[string]any)["cluster"], "portico"},
		"context user":    {ctx["context"].(map[string]any)["user"], user["name"]},
		"context name":    {ctx["name"], "portico"},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", what, c[0], c[1])
		}
	}
	var cc map[string]any
	data, _ = os.ReadFile(filepath.Join(dir, ClientConfigFile))
	if err := yaml.Unmarshal(data, &cc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"server": "http://127.0.0.1:9555", "tokenFile": "admin.token", "caFile": "ca.crt"}
	for k, v := range want {
		if cc[k] != v {
			t.Errorf("client.yaml %s = %v, want %v", k, cc[k], v)
		}
	}
	// Without --admin-addr a rewrite keeps the server already configured.
	mustInit(t, dir, InitOptions{RotateTokens: true})
	data, _ = os.ReadFile(filepath.Join(dir, KubeconfigFile))
	if !strings.Contains(string(data), "https://127.0.0.1:9555/clusters") {
		t.Errorf("server lost:\n%s", data)
	}
}

func TestInitRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, opts := range []InitOptions{
		{Hosts: []string{"bad host"}},
		{Hosts: []string{"http://x"}},
		{Hosts: []string{"-x.example"}},
		{AdminAddr: "nohost"},
	} {
		if _, err := Init(dir, opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files written: %v", entries)
	}
	file := filepath.Join(dir, "file")
	_ = os.WriteFile(file, nil, 0o600)
	if _, err := Init(file, InitOptions{}); err == nil {
		t.Error("a file accepted as folder")
	}
}

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	a, err := GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateToken()
	if a == b || len(a) != 43 {
		t.Errorf("tokens %q %q", a, b)
	}
	path := filepath.Join(dir, "t")
	_ = os.WriteFile(path, []byte("  "+a+"\r\n"), 0o600)
	if got, err := ReadToken(path); err != nil || got != a {
		t.Errorf("ReadToken = %q, %v", got, err)
	}
	_ = os.WriteFile(path, []byte(" \n"), 0o600)
	if _, err := ReadToken(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("empty token: %v", err)
	}
	if _, err := ReadToken(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing token: %v", err)
	}
	_ = os.Chmod(path, 0o640)
	var pe *PermError
	if err := CheckPerm(path); err == nil || !errors.As(err, &pe) || pe.Mode.Perm() != 0o640 {
		t.Errorf("CheckPerm = %v", err)
	}
}

// Package pki creates and loads the certificates and secrets a Portico deployment
// needs: a root CA, the control plane's serving certificate, data-plane client
// certificates, the bootstrap and admin tokens, a kubeconfig and the CLI's client.yaml
// (Init, behind `portico init DIR`). It also signs data-plane certificate requests
// (CA.SignCSR, NewCSR) and builds the TLS configurations of both ends of the
// distribution channel, which pick up renewed certificates from disk (ServerTLS,
// ClientTLS).
package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names inside the folder Init writes.
const (
	CACertFile           = "ca.crt"            // root CA certificate
	CAKeyFile            = "ca.key"            // root CA private key
	ControlPlaneCertFile = "control-plane.crt" // control-plane serving certificate
	ControlPlaneKeyFile  = "control-plane.key" // its private key
	DataPlaneCertFile    = "dataplane.crt"     // data-plane client certificate
	DataPlaneKeyFile     = "dataplane.key"     // its private key
	BootstrapTokenFile   = "bootstrap.token"   // lets a data plane without a certificate request one
	AdminTokenFile       = "admin.token"       // the admin API's bootstrap admin token
	KubeconfigFile       = "kubeconfig"        // for the cluster proxy
	ClientConfigFile     = "client.yaml"       // for the command-line client

	// DefaultAdminAddr is the admin API address written when InitOptions.AdminAddr is empty.
	DefaultAdminAddr = "127.0.0.1:9080"
)

// files lists what Init manages, in the order it reports and writes them (each key
// before its certificate, so a reloading reader never pairs a new certificate with a
// stale key for long).
var files = []string{
	CAKeyFile, CACertFile,
	ControlPlaneKeyFile, ControlPlaneCertFile,
	DataPlaneKeyFile, DataPlaneCertFile,
	BootstrapTokenFile, AdminTokenFile,
	KubeconfigFile, ClientConfigFile,
}

// InitOptions tunes Init. The zero value creates what is missing and changes nothing else.
type InitOptions struct {
	// Hosts are extra DNS names or IP addresses for the control-plane certificate,
	// besides localhost, 127.0.0.1 and ::1. Empty keeps the names of the existing
	// certificate when it is renewed.
	Hosts []string
	// AdminAddr is the admin API's host:port, written into client.yaml
	// (http://ADDR) and the kubeconfig (https://ADDR/clusters). Empty means
	// DefaultAdminAddr for new files and leaves existing ones as they are.
	AdminAddr string
	// Rotate issues new keys and certificates for the control plane and the data
	// plane, signed by the existing CA. Tokens are kept.
	Rotate bool
	// RotateTokens issues new bootstrap and admin tokens (and rewrites the kubeconfig,
	// which embeds the admin token).
	RotateTokens bool
	// RotateCA replaces the root CA and therefore everything else: every certificate,
	// both tokens and the kubeconfig. Data planes must be given the new ca.crt.
	RotateCA bool
}

// Action says what Init did to a file.
type Action string

// The actions Init reports.
const (
	Created Action = "created" // the file did not exist
	Kept    Action = "kept"    // the file exists and was left as it was
	Renewed Action = "renewed" // a certificate, key or token was replaced as asked
	Updated Action = "updated" // a derived file (kubeconfig) was rewritten to match
)

// FileStatus is what Init did to one file.
type FileStatus struct {
	// Name is the file's name inside the folder.
	Name string
	// Path is the file's path.
	Path string
	// Action is what happened to it.
	Action Action
	// Note explains more, such as permissions that were corrected.
	Note string
}

// Result reports what Init did.
type Result struct {
	// Dir is the folder.
	Dir string
	// Files lists every managed file.
	Files []FileStatus
	// Warnings are problems Init noticed but did not fix: certificates close to
	// expiry or with other names than asked, files that differ from what Init would
	// write. Each says how to fix it.
	Warnings []string
	// Notes are changes Init made that were not asked for, such as the folder's permissions.
	Notes []string
	// AdminTokenFile is the path of the admin token.
	AdminTokenFile string
}

// Changed reports whether Init wrote or modified anything.
func (r *Result) Changed() bool {
	if len(r.Notes) > 0 {
		return true
	}
	for _, f := range r.Files {
		if f.Action != Kept || f.Note != "" {
			return true
		}
	}
	return false
}

// existing is a file as found before Init changes anything.
type existing struct {
	path   string
	data   []byte
	exists bool
	err    error // exists but cannot be read
}

// initRun carries one Init call.
type initRun struct {
	dir      string
	opts     InitOptions
	now      time.Time
	found    map[string]existing
	write    map[string][]byte // new content to write, by file name
	action   map[string]Action
	note     map[string]string
	warnings []string
}

// Init creates, checks or renews the PKI and secrets in dir; see InitOptions and the
// package documentation. dir is created with mode 0700 and every file is written with
// mode 0600 through a temporary file and a rename. Without rotation options Init is
// idempotent: it creates what is missing and leaves existing files untouched (it only
// corrects their permissions), reporting in Result.Warnings what it would renew. It
// refuses, with an error naming the file and before writing anything, to replace a
// file that exists but cannot be read or parsed, unless a rotation option replaces
// that file anyway.
func Init(dir string, opts InitOptions) (*Result, error) {
	if dir == "" {
		return nil, errors.New("no folder given")
	}
	if opts.RotateCA {
		opts.Rotate, opts.RotateTokens = true, true
	}
	hosts, err := normalizeHosts(opts.Hosts)
	if err != nil {
		return nil, err
	}
	opts.Hosts = hosts
	if opts.AdminAddr != "" {
		if opts.AdminAddr, err = clientAddr(opts.AdminAddr); err != nil {
			return nil, err
		}
	}
	res := &Result{Dir: dir, AdminTokenFile: filepath.Join(dir, AdminTokenFile)}
	if err := ensureDir(dir, res); err != nil {
		return nil, err
	}
	r := &initRun{
		dir: dir, opts: opts, now: time.Now(),
		found: map[string]existing{}, write: map[string][]byte{},
		action: map[string]Action{}, note: map[string]string{},
	}
	for _, name := range files {
		p := filepath.Join(dir, name)
		data, ok, err := readExisting(p)
		r.found[name] = existing{path: p, data: data, exists: ok, err: err}
	}
	if err := r.plan(); err != nil {
		return nil, err
	}
	for _, name := range files {
		if data, ok := r.write[name]; ok {
			if err := writeAtomic(r.found[name].path, data); err != nil {
				return nil, err
			}
		} else if err := fixPerm(r.found[name].path, r.note, name); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, FileStatus{Name: name, Path: r.found[name].path, Action: r.action[name], Note: r.note[name]})
	}
	res.Warnings = r.warnings
	return res, nil
}

// plan decides every file's fate without writing anything.
func (r *initRun) plan() error {
	ca, caNew, err := r.planCA()
	if err != nil {
		return err
	}
	if err := r.planLeaf(ca, caNew, ControlPlaneCertFile, ControlPlaneKeyFile, true); err != nil {
		return err
	}
	if err := r.planLeaf(ca, caNew, DataPlaneCertFile, DataPlaneKeyFile, false); err != nil {
		return err
	}
	if _, _, err := r.planToken(BootstrapTokenFile); err != nil {
		return err
	}
	admin, adminNew, err := r.planToken(AdminTokenFile)
	if err != nil {
		return err
	}
	if err := r.planKubeconfig(ca, caNew || adminNew, admin); err != nil {
		return err
	}
	return r.planClientConfig()
}

// set records new content for a file: created if it did not exist, else renewed.
func (r *initRun) set(name string, data []byte, renewed Action) {
	r.write[name] = data
	if r.found[name].exists {
		r.action[name] = renewed
	} else {
		r.action[name] = Created
	}
}

func (r *initRun) warnf(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

func (r *initRun) planCA() (*CA, bool, error) {
	crt, key := r.found[CACertFile], r.found[CAKeyFile]
	switch {
	case r.opts.RotateCA || (!crt.exists && !key.exists):
		if !r.opts.RotateCA {
			for _, name := range []string{ControlPlaneCertFile, ControlPlaneKeyFile, DataPlaneCertFile, DataPlaneKeyFile} {
				if r.found[name].exists {
					return nil, false, fmt.Errorf("%s and %s are missing but %s exists: restore the CA, or pass --rotate-ca to create a new one and re-issue every certificate",
						crt.path, key.path, r.found[name].path)
				}
			}
		}
		ca, keyPEM, err := newCA(r.now)
		if err != nil {
			return nil, false, fmt.Errorf("creating the CA: %w", err)
		}
		r.set(CAKeyFile, keyPEM, Renewed)
		r.set(CACertFile, ca.CertPEM, Renewed)
		return ca, true, nil
	case !crt.exists || !key.exists:
		present, missing := crt.path, key.path
		if !crt.exists {
			present, missing = key.path, crt.path
		}
		return nil, false, fmt.Errorf("%s exists but %s is missing: restore it, or pass --rotate-ca to create a new CA and re-issue every certificate", present, missing)
	}
	for _, f := range []existing{crt, key} {
		if f.err != nil {
			return nil, false, fmt.Errorf("%w (fix or restore it; pass --rotate-ca to replace the CA)", f.err)
		}
	}
	ca, err := parseCA(crt.path, crt.data, key.path, key.data)
	if err != nil {
		return nil, false, fmt.Errorf("%w (fix or restore it; pass --rotate-ca to replace the CA)", err)
	}
	r.action[CACertFile], r.action[CAKeyFile] = Kept, Kept
	if left := ca.Cert.NotAfter.Sub(r.now); left < LeafValidity {
		r.warnf("%s expires on %s; certificates it signs cannot outlive it: plan a --rotate-ca", crt.path, ca.Cert.NotAfter.Format(time.DateOnly))
	}
	return ca, false, nil
}

// planLeaf handles one key pair: the control plane's (server) or the data plane's.
func (r *initRun) planLeaf(ca *CA, caNew bool, certName, keyName string, server bool) error {
	crt, key := r.found[certName], r.found[keyName]
	var old *x509.Certificate
	if crt.exists && crt.err == nil {
		old, _ = parseCert(crt.data)
	}
	issue := func(signer crypto.Signer) ([]byte, error) {
		if server {
			return ca.issueServer(signer.Public(), r.serverHosts(old), r.now)
		}
		return ca.issueClient(signer.Public(), DataPlaneCommonName, r.now, LeafValidity)
	}
	if r.opts.Rotate || caNew || (!crt.exists && !key.exists) {
		signer, keyPEM, err := newKey()
		if err != nil {
			return err
		}
		certPEM, err := issue(signer)
		if err != nil {
			return fmt.Errorf("issuing %s: %w", crt.path, err)
		}
		r.set(keyName, keyPEM, Renewed)
		r.set(certName, certPEM, Renewed)
		return nil
	}
	if !key.exists {
		return fmt.Errorf("%s exists but %s is missing: restore it, or pass --rotate to issue a new pair", crt.path, key.path)
	}
	if key.err != nil {
		return fmt.Errorf("%w (fix it, or pass --rotate to issue a new pair)", key.err)
	}
	signer, err := parseKey(key.data)
	if err != nil {
		return fmt.Errorf("%s: %w (fix it, or pass --rotate to issue a new pair)", key.path, err)
	}
	r.action[keyName] = Kept
	if !crt.exists {
		// A key without its certificate: certify the existing key, replacing nothing.
		certPEM, err := issue(signer)
		if err != nil {
			return fmt.Errorf("issuing %s: %w", crt.path, err)
		}
		r.set(certName, certPEM, Renewed)
		return nil
	}
	if crt.err != nil {
		return fmt.Errorf("%w (fix it, or pass --rotate to issue a new pair)", crt.err)
	}
	if old == nil {
		_, err := parseCert(crt.data)
		return fmt.Errorf("%s: %w (fix it, or pass --rotate to issue a new pair)", crt.path, err)
	}
	if !samePublicKey(signer.Public(), old.PublicKey) {
		return fmt.Errorf("%s does not hold the private key of %s (pass --rotate to issue a new pair)", key.path, crt.path)
	}
	r.action[certName] = Kept
	usage := x509.ExtKeyUsageClientAuth
	if server {
		usage = x509.ExtKeyUsageServerAuth
	}
	_, err = old.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: r.now, KeyUsages: []x509.ExtKeyUsage{usage}})
	switch {
	case err != nil:
		r.warnf("%s does not verify against %s (%v): pass --rotate to re-issue it", crt.path, CACertFile, err)
	case old.NotAfter.Sub(r.now) < RenewBefore:
		r.warnf("%s expires on %s: pass --rotate to renew it", crt.path, old.NotAfter.Format(time.DateOnly))
	}
	if server && len(r.opts.Hosts) > 0 {
		want, have := r.serverHosts(nil), certHosts(old)
		if !slices.Equal(want, have) {
			r.warnf("%s is for %s, not %s: pass --rotate to re-issue it", crt.path, strings.Join(have, ","), strings.Join(want, ","))
		}
	}
	return nil
}

// serverHosts is the names a new control-plane certificate gets: the defaults plus
// InitOptions.Hosts, or, without Hosts, the names of the certificate it replaces.
func (r *initRun) serverHosts(old *x509.Certificate) []string {
	extra := r.opts.Hosts
	if len(extra) == 0 && old != nil {
		extra = certHosts(old)
	}
	hosts, _ := normalizeHosts(append(slices.Clone(defaultHosts), extra...))
	return hosts
}

// certHosts returns the DNS names and IP addresses of a certificate, normalized.
func certHosts(c *x509.Certificate) []string {
	hosts := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	out, _ := normalizeHosts(hosts)
	return out
}

func (r *initRun) planToken(name string) (token string, changed bool, err error) {
	f := r.found[name]
	if r.opts.RotateTokens || !f.exists {
		tok, err := GenerateToken()
		if err != nil {
			return "", false, err
		}
		r.set(name, []byte(tok+"\n"), Renewed)
		return tok, true, nil
	}
	if f.err != nil {
		return "", false, fmt.Errorf("%w (fix it, or pass --rotate-tokens to issue new tokens)", f.err)
	}
	tok, err := parseToken(f.data)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w (fix it, or pass --rotate-tokens to issue new tokens)", f.path, err)
	}
	r.action[name] = Kept
	return tok, false, nil
}

// planKubeconfig writes the kubeconfig when it is missing or when what it embeds (CA,
// admin token) changed; otherwise it only warns when the file differs.
func (r *initRun) planKubeconfig(ca *CA, stale bool, adminToken string) error {
	f := r.found[KubeconfigFile]
	addr := r.opts.AdminAddr
	if addr == "" {
		addr = DefaultAdminAddr
	}
	want := newKubeconfig(addr, ca.CertPEM, adminToken)
	var have *Kubeconfig
	var perr error
	if f.exists && f.err == nil {
		have, perr = parseKubeconfig(f.data)
		if perr == nil && r.opts.AdminAddr == "" && have.Clusters[0].Cluster.Server != "" {
			want.Clusters[0].Cluster.Server = have.Clusters[0].Cluster.Server
		}
	}
	if !f.exists || stale {
		data, err := marshalYAML("kubeconfig for the Portico cluster proxy, written by portico init", want)
		if err != nil {
			return err
		}
		r.set(KubeconfigFile, data, Updated)
		return nil
	}
	if f.err != nil {
		return fmt.Errorf("%w (fix or remove it to have it written again)", f.err)
	}
	if perr != nil {
		return fmt.Errorf("%s: %w (fix or remove it to have it written again)", f.path, perr)
	}
	r.action[KubeconfigFile] = Kept
	if !sameKubeconfig(have, want) {
		r.warnf("%s differs from what portico init would write (server, CA or admin token): kept; remove it to have it written again", f.path)
	}
	return nil
}

// planClientConfig writes client.yaml when it is missing; otherwise it only warns
// when it names another server than InitOptions.AdminAddr.
func (r *initRun) planClientConfig() error {
	f := r.found[ClientConfigFile]
	addr := r.opts.AdminAddr
	if addr == "" {
		addr = DefaultAdminAddr
	}
	want := newClientConfig(addr)
	if !f.exists {
		data, err := marshalYAML("portico command-line client configuration, written by portico init", want)
		if err != nil {
			return err
		}
		r.set(ClientConfigFile, data, Updated)
		return nil
	}
	if f.err != nil {
		return fmt.Errorf("%w (fix or remove it to have it written again)", f.err)
	}
	have, err := parseClientConfig(f.data)
	if err != nil {
		return fmt.Errorf("%s: %w (fix or remove it to have it written again)", f.path, err)
	}
	r.action[ClientConfigFile] = Kept
	if r.opts.AdminAddr != "" && have.Server != want.Server {
		r.warnf("%s names server %s, not %s: kept; edit or remove it", f.path, have.Server, want.Server)
	}
	return nil
}

// ensureDir creates dir with mode 0700, or corrects the mode of an existing one.
func ensureDir(dir string, res *Result) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		return os.Chmod(dir, 0o700) // whatever the umask
	case err != nil:
		return err
	case !info.IsDir():
		return fmt.Errorf("%s is not a folder", dir)
	case info.Mode().Perm() != 0o700:
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("%s had permissions %04o; set to 0700", dir, info.Mode().Perm()))
	}
	return nil
}

// fixPerm sets an existing file's mode to 0600, noting the change.
func fixPerm(path string, notes map[string]string, name string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if info.Mode().Perm() == 0o600 {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	notes[name] = fmt.Sprintf("permissions were %04o; set to 0600", info.Mode().Perm())
	return nil
}

// normalizeHosts validates DNS names and IP addresses, lower-cases names, writes IPs
// in their canonical form, and returns them sorted without duplicates.
func normalizeHosts(hosts []string) ([]string, error) {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		n, err := normalizeHost(h)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeHost validates one DNS name (a leading "*." is allowed) or IP address.
func normalizeHost(h string) (string, error) {
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
		return ip.String(), nil
	}
	name := strings.TrimSuffix(strings.ToLower(h), ".")
	if len(name) == 0 || len(name) > 253 {
		return "", fmt.Errorf("host %q is not a DNS name or IP address", h)
	}
	for i, label := range strings.Split(name, ".") {
		ok := len(label) > 0 && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		if i == 0 && label == "*" {
			continue
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				ok = false
			}
		}
		if !ok {
			return "", fmt.Errorf("host %q is not a DNS name or IP address", h)
		}
	}
	return name, nil
}

// clientAddr validates a host:port admin address and turns an unspecified host
// (":9080", "0.0.0.0:9080") into the loopback address a client can dial.
func clientAddr(addr string) (string, error) {
	if err := checkAddr(addr); err != nil {
		return "", err
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}

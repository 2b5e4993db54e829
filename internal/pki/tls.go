package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// ServerTLS builds the control plane's serving configuration: TLS 1.3 or later, the
// certificate and key from certFile and keyFile, and client certificates verified
// against the CA in caFile when a client presents one (tls.VerifyClientCertIfGiven:
// a data plane that is still bootstrapping connects without a certificate, and the
// server decides what such a connection may do).
//
// The key pair is read again when either file changes on disk (checked on every
// handshake), so `portico init --rotate` takes effect for new connections without a
// restart. If the new files cannot be loaded (for example while only one of them has
// been replaced), the previous pair stays in use and the check is repeated on the next
// handshake. The CA in caFile is read once: a new CA needs a restart.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	r, err := newReloader(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientCAs:  pool,
		ClientAuth: tls.VerifyClientCertIfGiven,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.current(), nil
		},
	}, nil
}

// ClientTLS builds a data plane's (or another client's) configuration for connecting
// to the control plane: TLS 1.3 or later, servers verified against the CA in caFile
// with name serverName, and the client certificate from certFile and keyFile, read
// again when either file changes on disk (as for ServerTLS). With certFile and keyFile
// both empty the client presents no certificate, as when it bootstraps.
func ClientTLS(certFile, keyFile, caFile, serverName string) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		ServerName: serverName,
	}
	if certFile == "" && keyFile == "" {
		return cfg, nil
	}
	r, err := newReloader(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return r.current(), nil
	}
	return cfg, nil
}

// loadPool reads the PEM certificates of caFile into a pool.
func loadPool(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, errors.New("no CA file given")
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificates", caFile)
	}
	return pool, nil
}

// reloader holds a key pair and reloads it when its files change.
type reloader struct {
	certFile, keyFile string

	mu                sync.Mutex
	cert              *tls.Certificate
	certInfo, keyInfo os.FileInfo
}

func newReloader(certFile, keyFile string) (*reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("both a certificate file and a key file are needed")
	}
	r := &reloader{certFile: certFile, keyFile: keyFile}
	ci, err := os.Stat(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading the certificate: %w", err)
	}
	ki, err := os.Stat(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the key: %w", err)
	}
	if err := r.load(ci, ki); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads the pair; on success it becomes current.
func (r *reloader) load(ci, ki os.FileInfo) error {
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.certInfo, r.keyInfo = &pair, ci, ki
	return nil
}

// current returns the key pair, reloading it first if a file changed since it was read.
func (r *reloader) current() *tls.Certificate {
	ci, cerr := os.Stat(r.certFile)
	ki, kerr := os.Stat(r.keyFile)
	r.mu.Lock()
	defer r.mu.Unlock()
	if cerr == nil && kerr == nil && (changed(r.certInfo, ci) || changed(r.keyInfo, ki)) {
		_ = r.load(ci, ki) // on failure the previous pair stays; retried next time
	}
	return r.cert
}

// changed reports whether a file was replaced or modified between two stats.
func changed(old, cur os.FileInfo) bool {
	return !os.SameFile(old, cur) || !old.ModTime().Equal(cur.ModTime()) || old.Size() != cur.Size()
}

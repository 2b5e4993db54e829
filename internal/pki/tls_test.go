package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// handshakeResult is what each side of a TLS connection saw.
type handshakeResult struct {
	server    tls.ConnectionState
	serverErr error
	client    tls.ConnectionState
	clientErr error
}

// handshake connects a client to a server over a real loopback listener. The server
// writes one byte after its handshake, so the client also learns about failures the
// server detects (with TLS 1.3 the client finishes first).
func handshake(t *testing.T, srv, cli *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan handshakeResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- handshakeResult{serverErr: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, srv)
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte{1})
		}
		done <- handshakeResult{server: tc.ConnectionState(), serverErr: err}
	}()
	var res handshakeResult
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cli)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(conn, make([]byte, 1))
		res.client = conn.ConnectionState()
		conn.Close()
	}
	res.clientErr = err
	s := <-done
	res.server, res.serverErr = s.server, s.serverErr
	return res
}

func serverConfig(t *testing.T, dir string) *tls.Config {
	t.Helper()
	cfg, err := ServerTLS(filepath.Join(dir, ControlPlaneCertFile), filepath.Join(dir, ControlPlaneKeyFile), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func clientConfig(t *testing.T, dir, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg, err := ClientTLS(certFile, keyFile, filepath.Join(dir, CACertFile), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	srv := serverConfig(t, dir)
	if srv.MinVersion != tls.VersionTLS13 || srv.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Fatalf("server config: min %x, auth %v", srv.MinVersion, srv.ClientAuth)
	}

	// A data plane with its certificate.
	res := handshake(t, srv, clientConfig(t, dir, filepath.Join(dir, DataPlaneCertFile), filepath.Join(dir, DataPlaneKeyFile)))
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("mTLS: server %v, client %v", res.serverErr, res.clientErr)
	}
	if len(res.server.PeerCertificates) == 0 || res.server.PeerCertificates[0].Subject.CommonName != "dataplane" || len(res.server.VerifiedChains) == 0 {
		t.Errorf("server sees peer %v", res.server.PeerCertificates)
	}
	if res.server.Version != tls.VersionTLS13 {
		t.Errorf("version %x", res.server.Version)
	}

	// Without a certificate: the handshake succeeds, and the server sees no peer.
	res = handshake(t, srv, clientConfig(t, dir, "", ""))
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("no client cert: server %v, client %v", res.serverErr, res.clientErr)
	}
	if len(res.server.PeerCertificates) != 0 {
		t.Error("peer certificate without one sent")
	}

	// A client certificate from another CA is rejected.
	other := t.TempDir()
	mustInit(t, other, InitOptions{})
	res = handshake(t, srv, clientConfig(t, dir, filepath.Join(other, DataPlaneCertFile), filepath.Join(other, DataPlaneKeyFile)))
	if res.serverErr == nil || res.clientErr == nil {
		t.Errorf("foreign client cert accepted: server %v, client %v", res.serverErr, res.clientErr)
	}

	// A server with a certificate from another CA is rejected by the client.
	res = handshake(t, serverConfig(t, other), clientConfig(t, dir, "", ""))
	if res.clientErr == nil || !strings.Contains(res.clientErr.Error(), "certificate") {
		t.Errorf("foreign server accepted: %v", res.clientErr)
	}

	// A client asking for a name the server certificate lacks is rejected.
	cli, _ := ClientTLS("", "", filepath.Join(dir, CACertFile), "elsewhere.example")
	if res = handshake(t, srv, cli); res.clientErr == nil {
		t.Error("wrong server name accepted")
	}
}

func TestTLSReloadsRotatedCertificates(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	srv := serverConfig(t, dir)
	cli := clientConfig(t, dir, filepath.Join(dir, DataPlaneCertFile), filepath.Join(dir, DataPlaneKeyFile))

	first := handshake(t, srv, cli)
	if first.clientErr != nil || first.serverErr != nil {
		t.Fatal(first.clientErr, first.serverErr)
	}
	mustInit(t, dir, InitOptions{Rotate: true})
	second := handshake(t, srv, cli)
	if second.clientErr != nil || second.serverErr != nil {
		t.Fatal(second.clientErr, second.serverErr)
	}
	onDisk := func(name string) []byte { return readCert(t, filepath.Join(dir, name)).Raw }
	if !slices.Equal(second.client.PeerCertificates[0].Raw, onDisk(ControlPlaneCertFile)) ||
		slices.Equal(second.client.PeerCertificates[0].Raw, first.client.PeerCertificates[0].Raw) {
		t.Error("the server did not pick up its renewed certificate")
	}
	if !slices.Equal(second.server.PeerCertificates[0].Raw, onDisk(DataPlaneCertFile)) {
		t.Error("the client did not pick up its renewed certificate")
	}

	// A half-written pair (new key, old certificate) keeps the previous pair in use.
	keyPath := filepath.Join(dir, ControlPlaneKeyFile)
	_, keyPEM, _ := newKey()
	if err := writeAtomic(keyPath, keyPEM); err != nil {
		t.Fatal(err)
	}
	third := handshake(t, srv, cli)
	if third.clientErr != nil || !slices.Equal(third.client.PeerCertificates[0].Raw, second.client.PeerCertificates[0].Raw) {
		t.Errorf("mismatched pair on disk broke the server: %v", third.clientErr)
	}
}

func TestTLSConfigErrorsNameFiles(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	bad := filepath.Join(dir, "bad.crt")
	_ = os.WriteFile(bad, []byte("nope"), 0o600)
	cert, key, ca := filepath.Join(dir, ControlPlaneCertFile), filepath.Join(dir, ControlPlaneKeyFile), filepath.Join(dir, CACertFile)
	for what, err := range map[string]error{
		"ca":   second(ServerTLS(cert, key, bad)),
		"cert": second(ServerTLS(bad, key, ca)),
		"key":  second(ClientTLS(cert, filepath.Join(dir, "missing.key"), ca, "localhost")),
	} {
		if err == nil || !(strings.Contains(err.Error(), "bad.crt") || strings.Contains(err.Error(), "missing.key")) {
			t.Errorf("%s: %v", what, err)
		}
	}
}

func second(_ *tls.Config, err error) error { return err }

func TestSignCSR(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{})
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, keyPEM, err := NewCSR("edge-1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csrPEM, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("issued cert: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("issued cert is good for serverAuth")
	}
	if cert.Subject.CommonName != "edge-1" || cert.IsCA || !slices.Equal(cert.Subject.Organization, []string{DataPlaneOrganization}) {
		t.Errorf("subject %v, IsCA %v", cert.Subject, cert.IsCA)
	}
	if d := time.Until(cert.NotAfter); d > time.Hour || d < 50*time.Minute {
		t.Errorf("valid for %v", d)
	}

	// The issued pair works for mTLS against the control plane.
	certFile, keyFile := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	_ = writeAtomic(certFile, certPEM)
	_ = writeAtomic(keyFile, keyPEM)
	res := handshake(t, serverConfig(t, dir), clientConfig(t, dir, certFile, keyFile))
	if res.serverErr != nil || res.server.PeerCertificates[0].Subject.CommonName != "edge-1" {
		t.Errorf("handshake with issued cert: %v", res.serverErr)
	}

	// A tampered request: the subject changed after signing.
	block, _ := pem.Decode(csrPEM)
	der := slices.Clone(block.Bytes)
	i := strings.Index(string(der), "edge-1")
	der[i] = 'x'
	tampered := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if _, err := ca.SignCSR(tampered, 0); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("tampered CSR: %v", err)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(tmpl *x509.CertificateRequest) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	caTrue, _ := asn1.Marshal(struct{ IsCA bool }{true})
	for what, req := range map[string][]byte{
		"empty CN": mk(&x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"x"}}}),
		"CA:true": mk(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "evil"},
			ExtraExtensions: []pkix.Extension{{Id: oidBasicConstraints, Critical: true, Value: caTrue}}}),
		"not PEM":      []byte("hello"),
		"certificate":  certPEM,
		"garbage DER":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}}),
		"huge request": make([]byte, maxCSRBytes+1),
	} {
		if _, err := ca.SignCSR(req, 0); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
	// CA:false is fine, and other requested names are not copied.
	caFalse, _ := asn1.Marshal(struct{}{})
	out, err := ca.SignCSR(mk(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "ok"}, DNSNames: []string{"victim.example"},
		ExtraExtensions: []pkix.Extension{{Id: oidBasicConstraints, Value: caFalse}}}), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := parseCert(out)
	if len(c.DNSNames) != 0 || time.Until(c.NotAfter) < LeafValidity-time.Hour {
		t.Errorf("names %v, until %v", c.DNSNames, c.NotAfter)
	}
}

func TestLoadCAErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), CACertFile) {
		t.Errorf("empty folder: %v", err)
	}
	mustInit(t, dir, InitOptions{})
	// A leaf certificate is not a CA.
	leaf, _ := os.ReadFile(filepath.Join(dir, ControlPlaneCertFile))
	_ = os.WriteFile(filepath.Join(dir, CACertFile), leaf, 0o600)
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("leaf as CA: %v", err)
	}
}

package distribute

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// bootstrap signs a data plane's CSR for the holder of the bootstrap token. It is the
// one call served without a client certificate.
func (s *Server) bootstrap(ctx context.Context, req *BootstrapRequest) (*BootstrapResponse, error) {
	if s.opts.BootstrapToken == "" || s.opts.Sign == nil {
		return nil, status.Error(codes.Unimplemented, "bootstrap is disabled on this control plane")
	}
	addr, _, _ := verifiedCN(ctx)
	want := sha256.Sum256([]byte(s.opts.BootstrapToken))
	got := sha256.Sum256([]byte(req.Token))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		s.log.Warn("bootstrap with a wrong token", "address", addr, "name", req.Name)
		return nil, status.Error(codes.PermissionDenied, "wrong bootstrap token")
	}
	block, _ := pem.Decode([]byte(req.CSRPEM))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, status.Error(codes.InvalidArgument, "csrPEM: not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csrPEM: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csrPEM: %v", err)
	}
	if req.Name != "" && csr.Subject.CommonName != req.Name {
		return nil, status.Errorf(codes.InvalidArgument, "csrPEM: common name %q does not match name %q", csr.Subject.CommonName, req.Name)
	}
	cert, err := s.opts.Sign([]byte(req.CSRPEM))
	if err != nil {
		s.log.Error("bootstrap: signing failed", "name", req.Name, "err", err)
		return nil, status.Errorf(codes.Internal, "signing failed: %v", err)
	}
	s.log.Info("bootstrap: issued a data-plane certificate", "name", csr.Subject.CommonName, "address", addr)
	return &BootstrapResponse{CertPEM: string(cert), CAPEM: string(s.opts.CAPEM)}, nil
}

// Bootstrap obtains a data-plane client certificate from the control plane at addr with
// the bootstrap token: it generates an ECDSA P-256 key and a CSR with common name name
// (default: the host name), verifies the server against caPEM, checks that the returned
// certificate is for this key and chains to caPEM for client auth, and writes keyFile
// and certFile (0600).
func Bootstrap(ctx context.Context, addr string, caPEM []byte, token, certFile, keyFile, name string) error {
	if name == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("bootstrap: name: %w", err)
		}
		name = host
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return errors.New("bootstrap: caPEM holds no certificate")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("bootstrap: key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return fmt.Errorf("bootstrap: csr: %w", err)
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})

	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))),
		callOptions())
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer conn.Close()
	var resp BootstrapResponse
	if err := conn.Invoke(ctx, bootstrapMethod, &BootstrapRequest{Token: token, CSRPEM: string(csrPEM), Name: name}, &resp); err != nil {
		return fmt.Errorf("bootstrap %s: %w", addr, err)
	}
	if err := checkIssued([]byte(resp.CertPEM), key, roots); err != nil {
		return fmt.Errorf("bootstrap: the control plane's certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("bootstrap: key: %w", err)
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := writeFileAtomic(certFile, []byte(resp.CertPEM)); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// checkIssued verifies that certPEM is a client certificate for key issued under roots.
func checkIssued(certPEM []byte, key *ecdsa.PrivateKey, roots *x509.CertPool) error {
	block, rest := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if !bytes.Equal(pub, cert.RawSubjectPublicKeyInfo) {
		return errors.New("it is not for the key that was sent")
	}
	inter := x509.NewCertPool()
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: time.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err
}

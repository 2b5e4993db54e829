package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity periods and the renewal window used by Init and SignCSR.
const (
	// CAValidity is how long a new root CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is how long control-plane and data-plane certificates are valid,
	// and the default lifetime of certificates issued by SignCSR.
	LeafValidity = 365 * 24 * time.Hour
	// RenewBefore is how close to expiry a certificate must be for Init to warn about it.
	RenewBefore = 30 * 24 * time.Hour

	// DataPlaneOrganization is the subject organization of every data-plane certificate.
	DataPlaneOrganization = "portico:dataplanes"
	// DataPlaneCommonName is the common name of the data-plane certificate Init writes.
	DataPlaneCommonName = "dataplane"
	// ControlPlaneCommonName is the common name of the control-plane serving certificate.
	ControlPlaneCommonName = "portico-control-plane"

	// maxCSRBytes bounds the PEM a data plane may send to SignCSR.
	maxCSRBytes = 64 << 10
	// clockSkew backdates NotBefore so that peers with slightly slow clocks accept new certificates.
	clockSkew = 5 * time.Minute
)

// defaultHosts are the names every control-plane serving certificate carries.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// oidBasicConstraints identifies the basicConstraints extension (RFC 5280, 4.2.1.9).
var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

// CA is a certificate authority that can issue certificates: the root CA Init creates.
// Its methods are safe for concurrent use.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// CertPEM is Cert in PEM form, as stored in ca.crt.
	CertPEM []byte
	key     crypto.Signer
}

// LoadCA reads ca.crt and ca.key from dir. Errors name the file at fault.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA key: %w", err)
	}
	return parseCA(certPath, certPEM, keyPath, keyPEM)
}

// parseCA checks that certPEM is a CA certificate and keyPEM its private key.
func parseCA(certPath string, certPEM []byte, keyPath string, keyPEM []byte) (*CA, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("%s: not a CA certificate", certPath)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !samePublicKey(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("%s does not hold the private key of %s", keyPath, certPath)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

// Pool returns a certificate pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// newCA creates a self-signed ECDSA P-256 root CA valid for CAValidity.
func newCA(now time.Time) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Portico root CA", Organization: []string{"portico"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return &CA{Cert: cert, CertPEM: encodeCert(der), key: key}, keyPEM, nil
}

// issue signs tmpl for pub. It fills in the serial number and validity (capped at the
// CA's own expiry) and returns the certificate in PEM form.
func (ca *CA) issue(tmpl *x509.Certificate, pub crypto.PublicKey, now time.Time, ttl time.Duration) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(ttl)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return nil, err
	}
	return encodeCert(der), nil
}

// issueServer issues the control-plane serving certificate for hosts (DNS names and IPs).
func (ca *CA) issueServer(pub crypto.PublicKey, hosts []string, now time.Time) ([]byte, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: ControlPlaneCommonName, Organization: []string{"portico"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, pub, now, LeafValidity)
}

// issueClient issues a data-plane client certificate with the given common name.
func (ca *CA) issueClient(pub crypto.PublicKey, cn string, now time.Time, ttl time.Duration) ([]byte, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{DataPlaneOrganization}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if _, ok := pub.(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	return ca.issue(tmpl, pub, now, ttl)
}

// SignCSR issues a clientAuth certificate for a data plane from a PEM certificate
// request. The request's signature must verify, its common name must be non-empty (it
// becomes the certificate's), and it must not ask for a CA certificate. Everything
// else the request asks for (other names, extensions) is ignored: the certificate has
// organization DataPlaneOrganization and only the clientAuth usage. ttl <= 0 means
// LeafValidity; the certificate never outlives the CA.
func (ca *CA) SignCSR(csrPEM []byte, ttl time.Duration) ([]byte, error) {
	if len(csrPEM) > maxCSRBytes {
		return nil, fmt.Errorf("certificate request: larger than %d bytes", maxCSRBytes)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("certificate request: no PEM CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: bad signature: %w", err)
	}
	if csr.Subject.CommonName == "" {
		return nil, errors.New("certificate request: the subject common name is empty")
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidBasicConstraints) {
			continue
		}
		var bc struct {
			IsCA       bool `asn1:"optional"`
			MaxPathLen int  `asn1:"optional,default:-1"`
		}
		if _, err := asn1.Unmarshal(ext.Value, &bc); err != nil {
			return nil, fmt.Errorf("certificate request: bad basicConstraints: %w", err)
		}
		if bc.IsCA {
			return nil, errors.New("certificate request: asks for a CA certificate")
		}
	}
	if ttl <= 0 {
		ttl = LeafValidity
	}
	return ca.issueClient(csr.PublicKey, csr.Subject.CommonName, time.Now(), ttl)
}

// checkKey accepts the public key types SignCSR is willing to certify.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return errors.New("unsupported ECDSA curve")
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too short (at least 2048)", k.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// NewCSR creates an ECDSA P-256 key and a certificate request for it with common name
// name and organization DataPlaneOrganization, as a data plane sends when it bootstraps.
// It returns both in PEM form (the key as PKCS #8).
func NewCSR(name string) (csrPEM, keyPEM []byte, err error) {
	if name == "" {
		return nil, nil, errors.New("certificate request: empty name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name, Organization: []string{DataPlaneOrganization}},
	}, key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), keyPEM, nil
}

// newKey creates an ECDSA P-256 key and returns it with its PKCS #8 PEM form.
func newKey() (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := encodeKey(key)
	return key, keyPEM, err
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCert decodes the first PEM CERTIFICATE block of data.
func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bad certificate: %w", err)
	}
	return cert, nil
}

// parseKey decodes a PEM private key: PKCS #8, SEC 1 (EC) or PKCS #1 (RSA).
func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("bad private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

package v1alpha1

// Certificate is a certificate chain and its private key, served to clients whose SNI matches.
type Certificate struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     CertificateSpec `json:"spec"`
	Status   Status          `json:"status,omitempty"`
}

// CertificateSpec holds the PEM data, inline or as files. The loader reads files into
// the inline fields (paths are relative to the file that names them), so translation
// never does I/O.
type CertificateSpec struct {
	// Hosts the certificate is served for; empty means the names in the certificate.
	Hosts    []string `json:"hosts,omitempty"`
	Cert     string   `json:"cert,omitempty"`
	Key      string   `json:"key,omitempty"`
	CertFile string   `json:"certFile,omitempty"`
	KeyFile  string   `json:"keyFile,omitempty"`
}

package pki

import (
	"errors"
	"fmt"
	"net"
	"reflect"

	"sigs.k8s.io/yaml"
)

// Kubeconfig is the subset of the kubeconfig file format Init writes: one cluster, one
// user authenticated by a bearer token, and one context joining them.
type Kubeconfig struct {
	// APIVersion is "v1".
	APIVersion string `json:"apiVersion"`
	// Kind is "Config".
	Kind string `json:"kind"`
	// Clusters lists the API servers.
	Clusters []NamedCluster `json:"clusters"`
	// Users lists the credentials.
	Users []NamedUser `json:"users"`
	// Contexts joins clusters and users.
	Contexts []NamedContext `json:"contexts"`
	// CurrentContext names the context used by default.
	CurrentContext string `json:"current-context"`
}

// NamedCluster is a kubeconfig cluster entry.
type NamedCluster struct {
	// Name is the entry's name.
	Name string `json:"name"`
	// Cluster is the server.
	Cluster Cluster `json:"cluster"`
}

// Cluster is a kubeconfig cluster: the server URL and the CA that signs its certificate.
type Cluster struct {
	// Server is the base URL.
	Server string `json:"server"`
	// CertificateAuthorityData is the CA certificate in PEM form (base64 in the file).
	CertificateAuthorityData []byte `json:"certificate-authority-data,omitempty"`
}

// NamedUser is a kubeconfig user entry.
type NamedUser struct {
	// Name is the entry's name.
	Name string `json:"name"`
	// User holds the credentials.
	User User `json:"user"`
}

// User holds kubeconfig credentials: a bearer token.
type User struct {
	// Token is the bearer token.
	Token string `json:"token,omitempty"`
}

// NamedContext is a kubeconfig context entry.
type NamedContext struct {
	// Name is the entry's name.
	Name string `json:"name"`
	// Context joins a cluster and a user.
	Context Context `json:"context"`
}

// Context names a cluster and a user.
type Context struct {
	// Cluster names a cluster entry.
	Cluster string `json:"cluster"`
	// User names a user entry.
	User string `json:"user"`
}

// ClientConfig is the content of client.yaml, read by the command-line client.
type ClientConfig struct {
	// Server is the admin API base URL (without /api/v1).
	Server string `json:"server"`
	// TokenFile is the admin token file, relative to the folder of client.yaml.
	TokenFile string `json:"tokenFile,omitempty"`
	// Token is the admin token itself, when not in a file.
	Token string `json:"token,omitempty"`
	// CAFile verifies an https server, relative to the folder of client.yaml.
	CAFile string `json:"caFile,omitempty"`
}

// newKubeconfig builds the kubeconfig for the cluster proxy at adminAddr.
func newKubeconfig(adminAddr string, caPEM []byte, token string) *Kubeconfig {
	return &Kubeconfig{
		APIVersion:     "v1",
		Kind:           "Config",
		Clusters:       []NamedCluster{{Name: "portico", Cluster: Cluster{Server: "https://" + adminAddr + "/clusters", CertificateAuthorityData: caPEM}}},
		Users:          []NamedUser{{Name: "portico-admin", User: User{Token: token}}},
		Contexts:       []NamedContext{{Name: "portico", Context: Context{Cluster: "portico", User: "portico-admin"}}},
		CurrentContext: "portico",
	}
}

// newClientConfig builds client.yaml for the admin API at adminAddr.
func newClientConfig(adminAddr string) *ClientConfig {
	return &ClientConfig{Server: "http://" + adminAddr, TokenFile: AdminTokenFile, CAFile: CACertFile}
}

// parseKubeconfig reads a kubeconfig; it must have at least one cluster.
func parseKubeconfig(data []byte) (*Kubeconfig, error) {
	var kc Kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	if len(kc.Clusters) == 0 {
		return nil, errors.New("not a kubeconfig: no clusters")
	}
	return &kc, nil
}

// parseClientConfig reads client.yaml; it must name a server.
func parseClientConfig(data []byte) (*ClientConfig, error) {
	var cc ClientConfig
	if err := yaml.Unmarshal(data, &cc); err != nil {
		return nil, fmt.Errorf("not a client configuration: %w", err)
	}
	if cc.Server == "" {
		return nil, errors.New("not a client configuration: no server")
	}
	return &cc, nil
}

// marshalYAML renders v with a leading comment line.
func marshalYAML(comment string, v any) ([]byte, error) {
	out, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte("# "+comment+"\n"), out...), nil
}

// sameKubeconfig reports whether two kubeconfigs say the same thing.
func sameKubeconfig(a, b *Kubeconfig) bool { return reflect.DeepEqual(a, b) }

// checkAddr validates a host:port admin address.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("admin address %q: no port", addr)
	}
	if host != "" && net.ParseIP(host) == nil {
		if _, err := normalizeHost(host); err != nil {
			return fmt.Errorf("admin address %q: %w", addr, err)
		}
	}
	return nil
}

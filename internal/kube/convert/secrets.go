package convert

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"portico.dev/portico/api/v1alpha1"
)

// tlsCertificate returns the name of the Portico Certificate, in namespace, made from
// the Secret secret: type kubernetes.io/tls, with a PEM chain in tls.crt and its key in
// tls.key. The Certificate is named "secret-<secret>" and added to the Resources the
// first time; hosts (exact or "*.suffix") are the names to serve it for, merged over
// every call (none: the certificate's own DNS names). A missing Secret, another type or
// data that is not a matching certificate and key is an error saying which; no
// Certificate is made then. Callers must ask in a deterministic order.
func (c *converter) tlsCertificate(namespace, secret string, hosts []string) (name string, err error) {
	name = "secret-" + secret
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if cert := c.backends.certs[key]; cert != nil {
		cert.Spec.Hosts = mergeHosts(cert.Spec.Hosts, hosts)
		return name, nil
	}
	var s *corev1.Secret
	for _, x := range c.objs.Secrets {
		if x.Namespace == namespace && x.Name == secret {
			s = x
			break
		}
	}
	switch {
	case s == nil:
		return "", fmt.Errorf("Secret %s/%s not found", namespace, secret)
	case s.Type != corev1.SecretTypeTLS:
		return "", fmt.Errorf("Secret %s/%s has type %q, not %q", namespace, secret, s.Type, corev1.SecretTypeTLS)
	}
	crt, k := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(k) == 0 {
		return "", fmt.Errorf("Secret %s/%s: tls.crt and tls.key are required", namespace, secret)
	}
	if _, err := tls.X509KeyPair(crt, k); err != nil {
		return "", fmt.Errorf("Secret %s/%s: invalid certificate or key: %w", namespace, secret, err)
	}
	cert := &v1alpha1.Certificate{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindCertificate},
		Metadata: v1alpha1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:     v1alpha1.CertificateSpec{Cert: string(crt), Key: string(k), Hosts: mergeHosts(nil, hosts)},
	}
	if c.backends.certs == nil {
		c.backends.certs = map[types.NamespacedName]*v1alpha1.Certificate{}
	}
	c.backends.certs[key] = cert
	c.out.Resources.Certificates = append(c.out.Resources.Certificates, cert)
	return name, nil
}

// mergeHosts returns the sorted union of a and b, lower-cased.
func mergeHosts(a, b []string) []string {
	out := slices.Clone(a)
	for _, h := range b {
		h = strings.ToLower(h)
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

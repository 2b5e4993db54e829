package translate

import (
	"sort"
	"strings"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

// certificates translates every accepted Certificate. A certificate serves the hosts
// in spec.hosts, or else the DNS names in its leaf certificate (and, for a
// certificate with no DNS names, its subject common name when that is a host name);
// with none it can still be a listener's default certificate.
func (t *translator) certificates(certs []*v1alpha1.Certificate) []ir.Certificate {
	var out []ir.Certificate
	seen := map[resource.Key]int{}
	for _, i := range sortedByName(len(certs), func(i int) *v1alpha1.ObjectMeta { return &certs[i].Metadata }) {
		c := certs[i]
		key := keyOf(v1alpha1.KindCertificate, &c.Metadata)
		if !t.admit(key, seen, t.res.Validate(c)) {
			continue
		}
		if c.Spec.Cert == "" || c.Spec.Key == "" {
			// Only a source that reads files (the file loader) may leave a file reference;
			// translation itself never reads files.
			t.status.reject(key, v1alpha1.ReasonInvalid,
				"spec.certFile: the PEM data was not loaded (this source does not read files): set spec.cert and spec.key")
			t.invalid[key] = true
			t.status.get(key).notProgrammed = "invalid: not part of the configuration"
			continue
		}
		leaf, err := v1alpha1.ParseCertificatePEM(c.Spec.Cert)
		if err != nil { // validation parsed it already; keep translation total anyway
			t.status.reject(key, v1alpha1.ReasonInvalid, "spec.cert: "+err.Error())
			continue
		}
		hosts := lowerAll(c.Spec.Hosts)
		if len(hosts) == 0 {
			hosts = lowerAll(leaf.DNSNames)
		}
		if len(hosts) == 0 && leaf.Subject.CommonName != "" && isHostName(leaf.Subject.CommonName) {
			hosts = []string{strings.ToLower(leaf.Subject.CommonName)}
		}
		if hosts == nil {
			hosts = []string{}
		}
		r := refOf(&c.Metadata)
		t.certs[r] = true
		t.status.get(key).programmed = true
		out = append(out, ir.Certificate{Name: r.irName(), Hosts: hosts, Cert: c.Spec.Cert, Key: c.Spec.Key})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// isHostName reports whether a common name looks like a DNS name (or wildcard).
func isHostName(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || !strings.Contains(s, ".") {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func lowerAll(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.ToLower(s))
	}
	return out
}

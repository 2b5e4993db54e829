package translate

import (
	"encoding/json"
	"strings"
	"testing"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

const credentialsInput = `
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: alice}
spec:
  credentials:
  - {type: basic-auth, username: alice, password: "plain-text-password"}
  - {type: jwt-auth, key: alice-issuer, secret: "alice-hmac-secret-0123456789abcdef"}
`

// TestNoPlainPasswordInIR: neither input through the loader nor a Consumer built in
// memory (bypassing the loader) puts a plain password in the snapshot; /debug's
// redacted view shows no secret, hash or key material at all.
func TestNoPlainPasswordInIR(t *testing.T) {
	res, err := resource.Parse("in.yaml", []byte(credentialsInput))
	if err != nil {
		t.Fatal(err)
	}
	direct := &v1alpha1.Consumer{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: res.Consumers[0].APIVersion, Kind: v1alpha1.KindConsumer},
		Metadata: v1alpha1.ObjectMeta{Name: "bob"},
		Spec: v1alpha1.ConsumerSpec{Credentials: []v1alpha1.Credential{
			{Type: v1alpha1.CredentialBasicAuth, Username: "bob", Password: "bobs-plain-password"}}},
	}
	res.Consumers = append(res.Consumers, direct)
	snap, st := Translate(res)
	if errs := st.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	raw, _ := json.Marshal(snap)
	for _, pw := range []string{"plain-text-password", "bobs-plain-password"} {
		if strings.Contains(string(raw), pw) {
			t.Fatalf("plain password %q in the IR", pw)
		}
	}
	for _, c := range snap.Consumers {
		for _, cr := range c.Credentials {
			if cr.Type == v1alpha1.CredentialBasicAuth && !strings.HasPrefix(cr.Fields["passwordHash"], "$2") {
				t.Fatalf("%s: no bcrypt hash: %v", c.Name, cr.Fields)
			}
			if _, ok := cr.Fields["password"]; ok {
				t.Fatalf("%s: password field in the IR", c.Name)
			}
		}
	}
	red, _ := json.Marshal(snap.Redacted())
	for _, s := range []string{"$2", "alice-hmac-secret", "alice-issuer"} {
		if strings.Contains(string(red), s) {
			t.Fatalf("redacted snapshot shows %q: %s", s, red)
		}
	}
	if !strings.Contains(string(red), `"passwordHash":"\u003credacted\u003e"`) &&
		!strings.Contains(string(red), `"passwordHash":"<redacted>"`) {
		t.Fatalf("redacted snapshot lost the field names: %s", red)
	}
}

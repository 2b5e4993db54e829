package v1alpha1

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func pemKey(t *testing.T, pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func credErrors(cr Credential) string {
	c := &Consumer{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindConsumer}, Metadata: ObjectMeta{Name: "c"},
		Spec: ConsumerSpec{Credentials: []Credential{cr}}}
	var out []string
	for _, e := range c.Validate() {
		out = append(out, e.Field+": "+e.Message)
	}
	return strings.Join(out, "; ")
}

func TestCredentialValidation(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	const bc = "$2y$10$/9VSTZcU.RXyEeaWlmfPNOmtnKVrmDUH3xTE2IijT1oso6ZGeRnQS"
	const argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0MTIzNA$BoA9dlRQ1mdXmFJs2/Mqj1Mhrc4GLVif4ihOgJyudwc"
	for _, tc := range []struct {
		cr   Credential
		want string
	}{
		{Credential{Type: "basic-auth", Username: "u", Password: "pw"}, ""},
		{Credential{Type: "basic-auth", Username: "u", PasswordHash: bc}, ""},
		{Credential{Type: "basic-auth", Username: "u", PasswordHash: argon}, ""},
		{Credential{Type: "basic-auth", Username: "u", PasswordHash: "$2b$03$" + bc[7:]}, "bcrypt cost must be 04–31"},
		{Credential{Type: "basic-auth", Username: "u", PasswordHash: "$argon2i$v=19$m=1,t=1,p=1$a$b"}, "must be a bcrypt"},
		{Credential{Type: "basic-auth", Username: "u", PasswordHash: strings.Replace(argon, "v=19", "v=16", 1)}, "only version v=19"},
		{Credential{Type: "basic-auth", Username: "u", Password: strings.Repeat("x", 73)}, "at most 72 bytes"},
		{Credential{Type: "jwt-auth", Key: "k", Secret: strings.Repeat("s", 32)}, ""},
		{Credential{Type: "jwt-auth", Key: "k", PublicKey: pemKey(t, &ec.PublicKey)}, ""},
		{Credential{Type: "jwt-auth", Key: "k"}, ""},
		{Credential{Type: "jwt-auth", Key: "k", PublicKey: pemKey(t, &small.PublicKey)}, "need at least 2048"},
		{Credential{Type: "jwt-auth", Key: "k", Secret: strings.Repeat("s", 32), PublicKey: "x"}, "not both"},
		{Credential{Type: "jwt-auth", Secret: strings.Repeat("s", 32)}, "spec.credentials[0].key: required"},
		{Credential{Type: "jwt-auth", Key: "k", Password: "p"}, "password: not used by type jwt-auth"},
	} {
		got := credErrors(tc.cr)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%+v: got %q, want %q", tc.cr, got, tc.want)
		}
		if tc.cr.Password != "" && strings.Contains(got, tc.cr.Password) && len(tc.cr.Password) > 2 {
			t.Errorf("message repeats the password: %q", got)
		}
	}
}

func TestDuplicateCredentialsInConsumer(t *testing.T) {
	c := &Consumer{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindConsumer}, Metadata: ObjectMeta{Name: "c"},
		Spec: ConsumerSpec{Credentials: []Credential{
			{Type: "basic-auth", Username: "u", Password: "a"}, {Type: "basic-auth", Username: "u", Password: "b"},
			{Type: "jwt-auth", Key: "u"},
		}}}
	errs := c.Validate()
	if len(errs) != 1 || errs[0].Field != "spec.credentials[1].username" {
		t.Fatalf("got %v", errs)
	}
}

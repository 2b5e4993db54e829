package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

// consumerBuild is an accepted Consumer on its way to the snapshot.
type consumerBuild struct {
	key resource.Key
	out ir.Consumer
	// ids holds what identifies each credential among all consumers ("type\x00value":
	// a key-auth key's hash, a basic-auth username, a jwt-auth key), by credential index.
	ids map[int]string
	dup bool
}

// consumers translates every accepted Consumer. Secrets are hashed here, so the plain
// key never enters the IR: a key-auth key becomes {"keyHash": hex(sha256(key))}, a
// basic-auth credential {"username", "passwordHash"} (a plain password still present,
// from input that did not go through the resource loader, is hashed here), a jwt-auth
// credential {"key", "secret" | "publicKey"} (an HMAC secret must stay usable; the
// IR's redaction hides it). A key, basic-auth username or jwt-auth key shared by two
// consumers could not tell them apart: both are marked Duplicate and left out (no
// request authenticates as either until one changes).
func (t *translator) consumers(cs []*v1alpha1.Consumer) []ir.Consumer {
	seen := map[resource.Key]int{}
	var builds []*consumerBuild
	for _, i := range sortedByName(len(cs), func(i int) *v1alpha1.ObjectMeta { return &cs[i].Metadata }) {
		c := cs[i]
		key := keyOf(v1alpha1.KindConsumer, &c.Metadata)
		entries, perrs := pluginRefs("spec.plugins", c.Spec.Plugins)
		if !t.admit(key, seen, append(t.res.Validate(c), perrs...)) {
			continue
		}
		b := &consumerBuild{key: key, ids: map[int]string{}, out: ir.Consumer{
			Name:    refOf(&c.Metadata).irName(),
			Groups:  slices.Clone(c.Spec.Groups),
			Plugins: sortedSpecs(entries),
		}}
		for j, cr := range c.Spec.Credentials {
			out, id, err := credential(c, cr)
			if err != nil {
				t.status.reject(key, v1alpha1.ReasonInvalid, fmt.Sprintf("spec.credentials[%d]: %v", j, err))
				b.dup = true
			}
			if id != "" {
				b.ids[j] = cr.Type + "\x00" + id
			}
			b.out.Credentials = append(b.out.Credentials, out)
		}
		builds = append(builds, b)
	}

	type owner struct {
		b    *consumerBuild
		cred int
	}
	owners := map[string][]owner{}
	for _, b := range builds {
		for j := range len(b.out.Credentials) {
			if h, ok := b.ids[j]; ok {
				owners[h] = append(owners[h], owner{b, j})
			}
		}
	}
	for _, b := range builds {
		for j := range len(b.out.Credentials) {
			h, ok := b.ids[j]
			if !ok {
				continue
			}
			typ := b.out.Credentials[j].Type
			field, what := "key", "key"
			if typ == v1alpha1.CredentialBasicAuth {
				field, what = "username", "username"
			}
			for _, o := range owners[h] {
				if o.b == b {
					continue
				}
				b.dup = true
				t.status.reject(b.key, v1alpha1.ReasonDuplicate, fmt.Sprintf(
					"spec.credentials[%d].%s: Consumer %q has the same %s %s: a %s must identify one consumer",
					j, field, o.b.key.Name, typ, what, what))
			}
		}
	}

	var out []ir.Consumer
	for _, b := range builds {
		st := t.status.get(b.key)
		if b.dup {
			st.notProgrammed = "duplicate credential: not part of the configuration"
			continue
		}
		st.programmed = true
		out = append(out, b.out)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// credential converts one validated credential to its IR form and returns the value
// that identifies it among all consumers' credentials of its type.
func credential(c *v1alpha1.Consumer, cr v1alpha1.Credential) (out ir.Credential, id string, err error) {
	out = ir.Credential{Type: cr.Type, Fields: map[string]string{}}
	switch cr.Type {
	case v1alpha1.CredentialKeyAuth:
		sum := sha256.Sum256([]byte(cr.Key))
		h := hex.EncodeToString(sum[:])
		out.Fields["keyHash"] = h
		return out, h, nil
	case v1alpha1.CredentialBasicAuth:
		h := cr.PasswordHash
		if h == "" {
			if h, err = resource.HashPassword(c.Metadata.Namespace, c.Metadata.Name, cr.Username, cr.Password); err != nil {
				return out, "", errors.New("password cannot be hashed")
			}
		}
		out.Fields["username"] = cr.Username
		out.Fields["passwordHash"] = h
		return out, cr.Username, nil
	case v1alpha1.CredentialJWTAuth:
		out.Fields["key"] = cr.Key
		if cr.Secret != "" {
			out.Fields["secret"] = cr.Secret
		}
		if cr.PublicKey != "" {
			out.Fields["publicKey"] = cr.PublicKey
		}
		return out, cr.Key, nil
	}
	return out, "", nil
}

package translate

import (
	"crypto/sha256"
	"encoding/hex"
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
	// keyHashes holds the hash of each key-auth credential, by credential index.
	keyHashes map[int]string
	dup       bool
}

// consumers translates every accepted Consumer. Secrets are hashed here, so the plain
// key never enters the IR: a key-auth key becomes {"keyHash": hex(sha256(key))}. A
// key shared by two consumers could not tell them apart: both are marked Duplicate
// and left out (no request authenticates as either until one key changes).
func (t *translator) consumers(cs []*v1alpha1.Consumer) []ir.Consumer {
	seen := map[resource.Key]int{}
	var builds []*consumerBuild
	for _, i := range sortedByName(len(cs), func(i int) *v1alpha1.ObjectMeta { return &cs[i].Metadata }) {
		c := cs[i]
		key := keyOf(v1alpha1.KindConsumer, &c.Metadata)
		entries, perrs := pluginRefs("spec.plugins", c.Spec.Plugins)
		if !t.admit(key, seen, append(c.Validate(), perrs...)) {
			continue
		}
		b := &consumerBuild{key: key, keyHashes: map[int]string{}, out: ir.Consumer{
			Name:    refOf(&c.Metadata).irName(),
			Groups:  slices.Clone(c.Spec.Groups),
			Plugins: sortedSpecs(entries),
		}}
		for j, cr := range c.Spec.Credentials {
			out := ir.Credential{Type: cr.Type, Fields: map[string]string{}}
			if cr.Type == v1alpha1.CredentialKeyAuth {
				sum := sha256.Sum256([]byte(cr.Key))
				h := hex.EncodeToString(sum[:])
				out.Fields["keyHash"] = h
				b.keyHashes[j] = h
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
			if h, ok := b.keyHashes[j]; ok {
				owners[h] = append(owners[h], owner{b, j})
			}
		}
	}
	for _, b := range builds {
		for j := range len(b.out.Credentials) {
			h, ok := b.keyHashes[j]
			if !ok {
				continue
			}
			for _, o := range owners[h] {
				if o.b == b {
					continue
				}
				b.dup = true
				t.status.reject(b.key, v1alpha1.ReasonDuplicate, fmt.Sprintf(
					"spec.credentials[%d].key: Consumer %q has the same key-auth key: a key must identify one consumer",
					j, o.b.key.Name))
			}
		}
	}

	var out []ir.Consumer
	for _, b := range builds {
		st := t.status.get(b.key)
		if b.dup {
			st.notProgrammed = "duplicate key: not part of the configuration"
			continue
		}
		st.programmed = true
		out = append(out, b.out)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

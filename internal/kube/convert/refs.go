package convert

import gwv1 "sigs.k8s.io/gateway-api/apis/v1"

// refAllowed reports whether an object of fromKind (group fromGroup) in fromNS may refer
// to the object toKind/toName (group toGroup) in toNS: always within a namespace, and
// across namespaces when a ReferenceGrant in toNS allows it.
func (c *converter) refAllowed(fromGroup, fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	if fromNS == toNS {
		return true
	}
	for _, rg := range c.objs.ReferenceGrants {
		if rg.Namespace != toNS {
			continue
		}
		from := false
		for _, f := range rg.Spec.From {
			if string(f.Group) == fromGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				from = true
				break
			}
		}
		if !from {
			continue
		}
		for _, t := range rg.Spec.To {
			if string(t.Group) == toGroup && string(t.Kind) == toKind && (t.Name == nil || string(*t.Name) == toName) {
				return true
			}
		}
	}
	return false
}

// refGroup and refKind read a reference's group and kind with their defaults.
func refGroup(g *gwv1.Group, def string) string {
	if g == nil {
		return def
	}
	return string(*g)
}

func refKind(k *gwv1.Kind, def string) string {
	if k == nil {
		return def
	}
	return string(*k)
}

package translate

import (
	"maps"
	"sort"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

// upstreamList translates every accepted Upstream, with the defaults filled in:
// protocol http, algorithm round-robin, endpoint weight 1, and the traffic defaults
// of upstreamTraffic (a retry budget is always present).
func (t *translator) upstreamList(ups []*v1alpha1.Upstream) []ir.Upstream {
	var out []ir.Upstream
	seen := map[resource.Key]int{}
	for _, i := range sortedByName(len(ups), func(i int) *v1alpha1.ObjectMeta { return &ups[i].Metadata }) {
		u := ups[i]
		key := keyOf(v1alpha1.KindUpstream, &u.Metadata)
		entries, perrs := pluginRefs("spec.plugins", u.Spec.Plugins)
		if !t.admit(key, seen, append(t.res.Validate(u), perrs...)) {
			continue
		}
		r := refOf(&u.Metadata)
		t.plugins.inline[target{v1alpha1.KindUpstream, r}] = entries
		t.upstreams[r] = true
		t.status.get(key).programmed = true
		out = append(out, upstream(r.irName(), &u.Spec))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func upstream(name string, s *v1alpha1.UpstreamSpec) ir.Upstream {
	u := ir.Upstream{Name: name, Protocol: s.Protocol, Algorithm: v1alpha1.LBRoundRobin}
	if u.Protocol == "" {
		u.Protocol = ir.UpstreamHTTP
	}
	if s.LoadBalancer != nil && s.LoadBalancer.Algorithm != "" {
		u.Algorithm = s.LoadBalancer.Algorithm
	}
	for _, e := range s.Endpoints {
		w := int32(1)
		if e.Weight != nil {
			w = *e.Weight
		}
		u.Endpoints = append(u.Endpoints, ir.Endpoint{Address: e.Address, Weight: w, Labels: maps.Clone(e.Labels)})
	}
	if t := s.TLS; t != nil {
		u.TLS = &ir.UpstreamTLS{SNI: t.SNI, CACertificate: t.CACertificate, InsecureSkipVerify: t.InsecureSkipVerify,
			ClientCertificate: t.ClientCertificate, ClientKey: t.ClientKey}
	}
	u.UpstreamTraffic = upstreamTraffic(s)
	return u
}

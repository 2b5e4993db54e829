package translate

import (
	"maps"
	"sort"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

// upstreamList translates every accepted Upstream, with the defaults filled in:
// protocol http, algorithm round-robin, endpoint weight 1. Health checks are not
// part of the IR yet (the traffic-management work adds them).
func (t *translator) upstreamList(ups []*v1alpha1.Upstream) []ir.Upstream {
	var out []ir.Upstream
	seen := map[resource.Key]int{}
	for _, i := range sortedByName(len(ups), func(i int) *v1alpha1.ObjectMeta { return &ups[i].Metadata }) {
		u := ups[i]
		key := keyOf(v1alpha1.KindUpstream, &u.Metadata)
		if !t.admit(key, seen, u.Validate()) {
			continue
		}
		r := refOf(&u.Metadata)
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
	if s.TLS != nil {
		u.TLS = &ir.UpstreamTLS{SNI: s.TLS.SNI, CACertificate: s.TLS.CACertificate, InsecureSkipVerify: s.TLS.InsecureSkipVerify}
	}
	return u
}

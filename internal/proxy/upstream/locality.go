package upstream

import "portico.dev/portico/internal/ir"

// Locality (ir.Locality): endpoints whose "zone" label equals the configured
// zone are local. The rule, evaluated on every pick:
//
//	local tier used  ⇔  L > 0  and  100 × A ≥ MinHealthyPercent × L
//
// where L is the number of local endpoints and A how many of them are
// available (MinHealthyPercent defaults to 70). While it holds, picks go to
// available local endpoints only (the algorithm runs over them); when it
// fails, or every available local endpoint is on the avoid list, picks go to
// all available endpoints, local ones included. This is all-or-nothing where
// Envoy spills proportionally; it is simpler to reason about and keeps
// traffic local until the local zone is clearly degraded.

// defaultMinLocal is MinHealthyPercent when unset.
const defaultMinLocal = 70

func (b *balancer) initLocality(l *ir.Locality) {
	if l == nil || l.Zone == "" {
		return
	}
	b.minLocal = int(l.MinHealthyPercent)
	if b.minLocal <= 0 {
		b.minLocal = defaultMinLocal
	}
	b.locals = []*Endpoint{}
	for _, e := range b.eps {
		if e.local {
			b.locals = append(b.locals, e)
		}
	}
}

// localHealthy reports whether the local tier applies (the rule above).
func (b *balancer) localHealthy() bool {
	n := len(b.locals)
	if n == 0 {
		return false
	}
	up := 0
	for _, e := range b.locals {
		if b.available(e) {
			up++
		}
	}
	return up > 0 && 100*up >= b.minLocal*n
}

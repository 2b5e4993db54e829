package controlplane

import (
	"context"
	"testing"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

const kubeObjects = `apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: u}
spec: {endpoints: [{address: "127.0.0.2:1"}]}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: from-kube}
spec: {matches: [{path: {type: PathPrefix, value: /kube}}], backends: [{upstream: u}]}
`

func TestSourcesUnion(t *testing.T) {
	cp := New(nil)
	s := NewSources(cp, SourceStore, SourceKubernetes)
	store := parse(t, twoGateways)
	kube := parse(t, kubeObjects)
	kube.Validated = map[v1alpha1.Object][]v1alpha1.FieldError{kube.Routes[0]: nil}

	s.Publisher(SourceKubernetes)(kube)
	if got := cp.Revision(); got != 0 {
		t.Fatalf("revision %d before the store published", got)
	}
	s.Update(SourceStore, store, 7)
	if got := cp.Revision(); got != 7 {
		t.Fatalf("revision %d, want the store's 7", got)
	}
	res, ok := cp.ResourcesAt(context.Background(), 7)
	if !ok {
		t.Fatal("ResourcesAt")
	}
	if len(res.Routes) != 3 || res.Routes[0] != store.Routes[0] || res.Routes[2] != kube.Routes[0] {
		t.Fatalf("union routes: store objects first, then Kubernetes: %v", res.Routes)
	}
	if _, ok := res.Validated[kube.Routes[0]]; !ok {
		t.Fatal("the Kubernetes source's Validated entry is lost")
	}
	// Upstream "u" is in both: the store's (first) wins, the key is Duplicate.
	st := cp.Statuses(nil)
	conds := st[resource.Key{Kind: v1alpha1.KindUpstream, Name: "u"}]
	found := false
	for _, c := range conds {
		found = found || c.Reason == v1alpha1.ReasonDuplicate
	}
	if !found {
		t.Fatalf("upstream u conditions %+v, want Duplicate", conds)
	}

	// The admin API sees the store's objects only.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	stored, ok := s.ResourcesAt(ctx, 7)
	if !ok || stored != store {
		t.Fatalf("ResourcesAt returned %v %v, want the store's Resources", stored, ok)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, ok := s.ResourcesAt(ctx2, 8); ok {
		t.Fatal("ResourcesAt(8) before the store reached it")
	}
	// A Kubernetes update keeps the store's revision.
	s.Publisher(SourceKubernetes)(&resource.Resources{})
	if got := cp.Revision(); got != 7 {
		t.Fatalf("revision %d after a Kubernetes update, want 7", got)
	}
	if res, _ := cp.ResourcesAt(context.Background(), 7); len(res.Routes) != 2 || len(res.Upstreams) != 1 {
		t.Fatalf("with an empty Kubernetes source the union is the store's objects: %d routes, %d upstreams", len(res.Routes), len(res.Upstreams))
	}
}

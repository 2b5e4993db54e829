package translate

import (
	"encoding/json"
	"fmt"
	"testing"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

// scaleResources builds a gateway, an upstream and n routes on distinct hosts and paths.
func scaleResources(n int) *resource.Resources {
	res := &resource.Resources{}
	res.Add(&v1alpha1.Gateway{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindGateway},
		Metadata: v1alpha1.ObjectMeta{Name: "default"},
		Spec:     v1alpha1.GatewaySpec{Listeners: []v1alpha1.Listener{{Name: "http", Port: 8080, Protocol: v1alpha1.ProtocolHTTP}}}})
	res.Add(&v1alpha1.Upstream{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindUpstream},
		Metadata: v1alpha1.ObjectMeta{Name: "u"},
		Spec:     v1alpha1.UpstreamSpec{Endpoints: []v1alpha1.Endpoint{{Address: "127.0.0.1:9001"}}}})
	for i := range n {
		res.Add(&v1alpha1.Route{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindRoute},
			Metadata: v1alpha1.ObjectMeta{Name: fmt.Sprintf("r%06d", i), CreationTimestamp: "2026-01-01T00:00:00Z"},
			Spec: v1alpha1.RouteSpec{
				Hosts:    []string{fmt.Sprintf("h%d.example", i%100)},
				Matches:  []v1alpha1.RouteMatch{{Path: &v1alpha1.PathMatch{Type: v1alpha1.PathPrefix, Value: fmt.Sprintf("/svc/%d", i)}}},
				Backends: []v1alpha1.Backend{{Upstream: "u"}},
			}})
	}
	return res
}

func BenchmarkTranslateScale(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		res := scaleResources(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				snap, _ := Translate(res)
				if err := snap.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprint(n)+"/prevalidated", func(b *testing.B) {
			pre := *res
			pre.Validated = map[v1alpha1.Object][]v1alpha1.FieldError{}
			for _, o := range res.Objects() {
				pre.Validated[o] = o.Validate()
			}
			for b.Loop() {
				snap, _ := Translate(&pre)
				if err := snap.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprint(n)+"/json", func(b *testing.B) {
			snap, _ := Translate(res)
			for b.Loop() {
				if _, err := json.Marshal(snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

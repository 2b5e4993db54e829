package convert

import (
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// keyed renders a status map with "namespace/name" keys (YAML needs string keys).
func keyed[V any](m map[types.NamespacedName]V) any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k.String()] = v
	}
	return out
}

func routesKeyed(m map[RouteKey]gwv1.RouteStatus) any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]gwv1.RouteStatus, len(m))
	for k, v := range m {
		out[k.Kind+"/"+k.String()] = v
	}
	return out
}

func mapOrNil[V any](m map[string]V) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

package distribute

import (
	"bytes"
	"reflect"
	"slices"

	"portico.dev/portico/internal/ir"
)

// The control plane diffs a snapshot against the one a data plane runs; at 10k routes
// reflect.DeepEqual on every route costs more than the rest of a push. hostEqual says
// what reflect.DeepEqual would say of two virtual hosts, comparing the fields every
// route has directly and the optional ones (pointers) with reflect.DeepEqual only when
// set. A field it missed would not corrupt anything: the data plane's rebuilt snapshot
// would not hash to the announced version and it would ask for a full snapshot.
// TestRouteEqualCoversEveryField keeps it complete.

func deepEqual[T any](a, b *T) bool { return reflect.DeepEqual(a, b) }

func hostEqual(a, b *ir.VirtualHost) bool {
	if a.Hostname != b.Hostname || len(a.Routes) != len(b.Routes) || (a.Routes == nil) != (b.Routes == nil) {
		return false
	}
	if len(a.Routes) > 0 && &a.Routes[0] == &b.Routes[0] {
		return true
	}
	for i := range a.Routes {
		if !routeEqual(&a.Routes[i], &b.Routes[i]) {
			return false
		}
	}
	return true
}

func routeEqual(a, b *ir.Route) bool {
	return a.Name == b.Name && a.Gateway == b.Gateway && a.MatchIndex == b.MatchIndex &&
		a.Path == b.Path && a.Method == b.Method &&
		a.TimeoutMillis == b.TimeoutMillis && a.IdleTimeoutMillis == b.IdleTimeoutMillis &&
		sliceEqual(a.Headers, b.Headers) && sliceEqual(a.QueryParams, b.QueryParams) &&
		sliceEqual(a.Backends, b.Backends) && pluginsEqual(a.Plugins, b.Plugins) &&
		setEqual(a.RequestHeaders, b.RequestHeaders) && setEqual(a.ResponseHeaders, b.ResponseHeaders) &&
		setEqual(a.Rewrite, b.Rewrite) && setEqual(a.Redirect, b.Redirect) &&
		setEqual(a.Retry, b.Retry) && setEqual(a.Mirror, b.Mirror) && setEqual(a.Fault, b.Fault)
}

// sliceEqual is reflect.DeepEqual for slices of comparable elements (nil differs from
// empty).
func sliceEqual[T comparable](a, b []T) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}

func pluginsEqual(a, b []ir.PluginSpec) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, func(x, y ir.PluginSpec) bool {
		return x.Name == y.Name && (x.Config == nil) == (y.Config == nil) && bytes.Equal(x.Config, y.Config)
	})
}

// setEqual compares optional parts: nil only equals nil.
func setEqual[T any](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a == b || reflect.DeepEqual(a, b)
}

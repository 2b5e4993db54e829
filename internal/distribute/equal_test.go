package distribute

import (
	"encoding/json"
	"reflect"
	"testing"

	"portico.dev/portico/internal/ir"
)

// nonZero builds a non-zero value of t; two calls give equal values in distinct memory.
func nonZero(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Slice:
		if t == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(`{"x":1}`))
			break
		}
		v.Set(reflect.MakeSlice(t, 1, 1))
		v.Index(0).Set(nonZero(t.Elem()))
	case reflect.Pointer:
		v.Set(reflect.New(t.Elem()))
	case reflect.Map:
		v.Set(reflect.MakeMap(t))
	case reflect.Struct:
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				v.Field(i).Set(nonZero(t.Field(i).Type))
			}
		}
	}
	return v
}

// TestRouteEqualCoversEveryField sets each field of a route in turn (and of the plugin
// specs, compared by hand): routeEqual must tell it from the zero route, agree with
// reflect.DeepEqual on nil against empty, and find equal values in distinct memory equal.
func TestRouteEqualCoversEveryField(t *testing.T) {
	rt := reflect.TypeFor[ir.Route]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		var zero, a, b ir.Route
		reflect.ValueOf(&a).Elem().Field(i).Set(nonZero(f.Type))
		reflect.ValueOf(&b).Elem().Field(i).Set(nonZero(f.Type))
		if routeEqual(&zero, &a) || routeEqual(&a, &zero) {
			t.Errorf("field %s: a set value equals the zero route", f.Name)
		}
		if !routeEqual(&a, &b) {
			t.Errorf("field %s: equal values in distinct memory differ", f.Name)
		}
		if f.Type.Kind() == reflect.Slice {
			var empty ir.Route
			reflect.ValueOf(&empty).Elem().Field(i).Set(reflect.MakeSlice(f.Type, 0, 0))
			if routeEqual(&zero, &empty) != reflect.DeepEqual(zero, empty) {
				t.Errorf("field %s: nil against empty disagrees with reflect.DeepEqual", f.Name)
			}
		}
	}
	vt := reflect.TypeFor[ir.VirtualHost]()
	if vt.NumField() != 2 || vt.Field(0).Name != "Hostname" || vt.Field(1).Name != "Routes" {
		t.Errorf("ir.VirtualHost has fields hostEqual does not compare")
	}
	pt := reflect.TypeFor[ir.PluginSpec]()
	for i := range pt.NumField() {
		a := ir.Route{Plugins: []ir.PluginSpec{{}}}
		b := ir.Route{Plugins: []ir.PluginSpec{{}}}
		reflect.ValueOf(&b.Plugins[0]).Elem().Field(i).Set(nonZero(pt.Field(i).Type))
		if routeEqual(&a, &b) {
			t.Errorf("plugin field %s: not compared", pt.Field(i).Name)
		}
	}
}

func TestHostEqual(t *testing.T) {
	a := hostsBase().Listeners[0].VirtualHosts[1]
	b := hostsBase().Listeners[0].VirtualHosts[1]
	if !hostEqual(&a, &b) || !hostEqual(&a, &a) {
		t.Fatal("equal hosts differ")
	}
	for name, change := range map[string]func(*ir.VirtualHost){
		"hostname":   func(v *ir.VirtualHost) { v.Hostname = "z" },
		"route":      func(v *ir.VirtualHost) { v.Routes[2].Backends[0].Weight = 2 },
		"fewer":      func(v *ir.VirtualHost) { v.Routes = v.Routes[:2] },
		"nil routes": func(v *ir.VirtualHost) { v.Routes = nil },
		"redirect":   func(v *ir.VirtualHost) { v.Routes[0].Redirect = &ir.Redirect{StatusCode: 301} },
	} {
		c := hostsBase().Listeners[0].VirtualHosts[1]
		change(&c)
		if hostEqual(&a, &c) || hostEqual(&c, &a) {
			t.Errorf("%s: changed host equals the original", name)
		}
	}
	empty := ir.VirtualHost{Hostname: "e", Routes: []ir.Route{}}
	null := ir.VirtualHost{Hostname: "e"}
	if hostEqual(&empty, &null) {
		t.Error("no routes (null in JSON) equals an empty list ([])")
	}
}

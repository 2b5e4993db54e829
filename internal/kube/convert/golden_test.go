package convert

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden .out.yaml files")

// golden is what a golden file holds: the Portico resources and the statuses.
type golden struct {
	Resources      any `json:"resources"`
	GatewayClasses any `json:"gatewayClasses,omitempty"`
	Gateways       any `json:"gateways,omitempty"`
	Routes         any `json:"routes,omitempty"`
	Ingresses      any `json:"ingresses,omitempty"`
	Warnings       any `json:"warnings,omitempty"`
}

// TestGolden converts every testdata/*/*.in.yaml and compares with its .out.yaml
// (`go test ./internal/kube/convert -update` rewrites them).
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/*/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(in, ".in.yaml")
		t.Run(strings.TrimPrefix(name, "testdata/"), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Decode(in, data)
			if err != nil {
				t.Fatal(err)
			}
			res := Convert(objs, Options{Addresses: []string{"198.18.0.10"}})
			got, err := yaml.Marshal(golden{
				Resources: res.Resources, GatewayClasses: mapOrNil(res.GatewayClasses), Gateways: keyed(res.Gateways),
				Routes: routesKeyed(res.Routes), Ingresses: keyed(res.Ingresses), Warnings: keyed(res.Warnings),
			})
			if err != nil {
				t.Fatal(err)
			}
			out := name + ".out.yaml"
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != string(got) {
				t.Errorf("%s differs (run with -update and review the diff):\n%s", out, got)
			}
		})
	}
}

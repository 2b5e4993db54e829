package test

import (
	"os"
	"path/filepath"
	"testing"

	"portico.dev/portico/examples"
	"portico.dev/portico/internal/pipeline"
	"portico.dev/portico/internal/resource"
)

// TestQuickstartTranslates keeps examples/quickstart.yaml (and its embedded copy) valid:
// `make run` depends on it.
func TestQuickstartTranslates(t *testing.T) {
	embedded, err := examples.WriteQuickstart(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"../examples/quickstart.yaml", embedded} {
		res, err := resource.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		snap, err := pipeline.New(true, nil, pipeline.Hooks{}).TranslateOnce(res)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ports := map[int32]string{}
		for _, l := range snap.Listeners {
			ports[l.Port] = string(l.Protocol)
		}
		if ports[8080] != "HTTP" || ports[8443] != "HTTPS" {
			t.Fatalf("%s: listeners %v, want :8080 HTTP and :8443 HTTPS", path, ports)
		}
		if len(snap.Certificates) != 1 || snap.Certificates[0].Key == "" {
			t.Fatalf("%s: quick-start certificate not loaded", path)
		}
	}
	// The embedded copy matches the file in the repository.
	a, _ := os.ReadFile("../examples/quickstart.yaml")
	b, _ := os.ReadFile(embedded)
	if string(a) != string(b) {
		t.Fatal("embedded quick start differs from examples/quickstart.yaml")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(embedded), "certs", "quickstart.key")); err != nil {
		t.Fatal(err)
	}
}

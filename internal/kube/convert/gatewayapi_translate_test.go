package convert

import (
	"os"
	"path/filepath"
	"testing"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/translate"
)

// TestGatewayAPITranslates runs the Portico resources converted from valid Gateway API
// inputs through translation: none may be invalid, and every reference must resolve.
func TestGatewayAPITranslates(t *testing.T) {
	for _, name := range []string{
		"gateway-http-https", "gateway-cross-ns-secret-granted", "allowed-routes-same-vs-all",
		"hostname-intersection", "section-name", "matches", "filters", "weighted-backends",
		"backend-cross-ns-granted", "grpcroute", "tlsroute", "tcproute", "udproute",
		"backendtlspolicy", "attached-routes", "app-protocol-h2c",
		// Inputs with problems Kubernetes statuses report still translate cleanly.
		"backend-not-found", "backend-cross-ns-denied", "backend-invalid-kind", "gateway-listener-conflict", "gateway-missing-secret",
	} {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join("testdata", "gateway", name+".in.yaml")
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Decode(in, data)
			if err != nil {
				t.Fatal(err)
			}
			res := Convert(objs, Options{})
			if len(res.Resources.Gateways) == 0 {
				t.Fatal("no Portico Gateway made")
			}
			_, st := translate.Translate(res.Resources)
			for key, conds := range st {
				for _, c := range conds {
					if c.Reason == v1alpha1.ReasonInvalid {
						t.Errorf("%s: %s=%s (%s): %s", key, c.Type, c.Status, c.Reason, c.Message)
					}
				}
			}
			for _, e := range st.Errors() {
				t.Errorf("translation: %s", e)
			}
		})
	}
}

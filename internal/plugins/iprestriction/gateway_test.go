package iprestriction_test

import (
	"net/http"
	"testing"

	"portico.dev/portico/internal/plugins/internal/gatewaytest"
	_ "portico.dev/portico/internal/plugins/iprestriction"
)

// TestThroughTheDataPlane: the test client connects from 127.0.0.1. Denying it answers
// 403; trusting it as a proxy makes X-Forwarded-For decide.
func TestThroughTheDataPlane(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	c := gatewaytest.Client()
	status := func(base, xff string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/", nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deny := gatewaytest.Start(t, ok, gatewaytest.Spec("ip-restriction", `{"deny":["127.0.0.0/8"]}`))
	if got := status(deny, "203.0.113.9"); got != 403 {
		t.Fatalf("denied direct peer (XFF not trusted): %d", got)
	}
	viaProxy := gatewaytest.Start(t, ok, gatewaytest.Spec("ip-restriction",
		`{"allow":["203.0.113.0/24"],"trustedProxies":["127.0.0.1"]}`))
	if got := status(viaProxy, "203.0.113.9"); got != 200 {
		t.Fatalf("allowed client behind a trusted proxy: %d", got)
	}
	if got := status(viaProxy, "198.51.100.7"); got != 403 {
		t.Fatalf("other client behind a trusted proxy: %d", got)
	}
	if got := status(viaProxy, ""); got != 403 {
		t.Fatalf("the trusted proxy itself is not in allow: %d", got)
	}
}

package cors_test

import (
	"net/http"
	"testing"

	_ "portico.dev/portico/internal/plugins/cors"
	"portico.dev/portico/internal/plugins/internal/gatewaytest"
)

// TestThroughTheDataPlane: a preflight is answered by the gateway without reaching the
// backend; an actual request from an allowed origin gets the CORS headers on the
// proxied response; a disallowed origin gets none.
func TestThroughTheDataPlane(t *testing.T) {
	hits := 0
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ })
	base := gatewaytest.Start(t, backend, gatewaytest.Spec("cors",
		`{"allowOrigins":["https://app.example"],"allowMethods":["GET","PUT"],"maxAge":"10m"}`))
	c := gatewaytest.Client()

	pre, _ := http.NewRequest("OPTIONS", base+"/items", nil)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err := c.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Max-Age") != "600" || hits != 0 {
		t.Fatalf("preflight: %d %v (backend hits %d)", resp.StatusCode, resp.Header, hits)
	}

	for _, tc := range []struct{ origin, want string }{
		{"https://app.example", "https://app.example"},
		{"https://evil.example", ""},
	} {
		req, _ := http.NewRequest("GET", base+"/items", nil)
		req.Header.Set("Origin", tc.origin)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != tc.want {
			t.Fatalf("origin %s: %d, allow-origin %q", tc.origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	if hits != 2 {
		t.Fatalf("backend hits %d, want 2", hits)
	}
}

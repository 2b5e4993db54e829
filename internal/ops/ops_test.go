package ops

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestEndpoints(t *testing.T) {
	ready := false
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "portico_test_total", Help: "t"})
	reg.MustRegister(c)
	c.Add(3)
	var cfg any
	h := Handler(Sources{
		Ready:    func() bool { return ready },
		Config:   func() any { return cfg },
		Gatherer: reg,
	})
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != 503 {
		t.Fatalf("readyz before config %d", code)
	}
	if code, _ := get(t, h, "/debug/config"); code != 503 {
		t.Fatalf("debug/config before config %d", code)
	}
	ready, cfg = true, map[string]string{"version": "abc"}
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("readyz after config %d", code)
	}
	if code, body := get(t, h, "/debug/config"); code != 200 || !strings.Contains(body, `"version": "abc"`) {
		t.Fatalf("debug/config %d %s", code, body)
	}
	if code, body := get(t, h, "/metrics"); code != 200 || !strings.Contains(body, "portico_test_total 3") {
		t.Fatalf("metrics %d %s", code, body)
	}
}

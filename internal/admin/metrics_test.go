package admin

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"portico.dev/portico/internal/translate"
)

func TestMetricsAndHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	var ready atomic.Bool
	h := newHarness(t, sqliteDSN(t), func(o *Options) {
		o.Registry, o.Gatherer = reg, reg
		o.Ready = ready.Load
		o.DataPlanes = func() any { return []map[string]string{{"id": "dp-1"}} }
	})
	h.want(h.do("GET", "/api/v1/routes", adminToken, "", nil), 200, "list")
	h.want(h.do("GET", "/api/v1/routes", "", "", nil), 401, "unauthenticated")
	h.want(h.do("GET", "/readyz", "", "", nil), 503, "not ready")
	ready.Store(true)
	h.want(h.do("GET", "/readyz", "", "", nil), 200, "ready")
	dp := h.want(h.do("GET", "/api/v1/dataplanes", adminToken, "", nil), 200, "dataplanes")
	if !strings.Contains(string(dp.raw), `"dp-1"`) {
		t.Errorf("dataplanes = %s", dp.raw)
	}
	m := h.want(h.do("GET", "/metrics", "", "", nil), 200, "metrics")
	for _, want := range []string{
		`portico_admin_requests_total{code="200",method="GET",route="/api/v1/{kind}"} 1`,
		`portico_admin_requests_total{code="401",method="GET",route="/api/v1/{kind}"} 1`,
		`portico_admin_request_duration_seconds_count{method="GET",route="/api/v1/{kind}"} 2`,
	} {
		if !strings.Contains(string(m.raw), want) {
			t.Errorf("metrics lack %s:\n%s", want, m.raw)
		}
	}
	// A second handler over the same registry shares the series.
	if _, err := New(Options{Store: h.st, Registry: reg}); err != nil {
		t.Errorf("second handler on one registry: %v", err)
	}
	// Without DataPlanes the list is empty, not null.
	h2 := newHarness(t, sqliteDSN(t), nil)
	dp = h2.want(h2.do("GET", "/api/v1/dataplanes", adminToken, "", nil), 200, "no dataplanes")
	if strings.TrimSpace(string(dp.raw)) != `{"items":[]}` {
		t.Errorf("empty dataplanes = %s", dp.raw)
	}
	h2.want(h2.do("GET", "/metrics", "", "", nil), 404, "metrics disabled")
}

// TestStatusesOnGet: GET fills status.conditions from Options.Statuses.
func TestStatusesOnGet(t *testing.T) {
	h := newHarness(t, sqliteDSN(t), func(o *Options) {
		st := o.Store
		o.Statuses = func() translate.Statuses {
			res, err := st.Resources(context.Background())
			if err != nil {
				return nil
			}
			_, s := translate.Translate(res)
			return s
		}
	})
	h.want(h.do("POST", "/api/v1/apply", adminToken, "application/yaml", baseYAML), 200, "apply")
	r := h.want(h.do("GET", "/api/v1/routes/web", adminToken, "", nil), 200, "get")
	conds, _ := r.body["status"].(map[string]any)["conditions"].([]any)
	if len(conds) != 3 || str(conds[2], "type") != "Programmed" || str(conds[2], "status") != "True" {
		t.Errorf("route status = %s", r.raw)
	}
	// Status in a body is ignored: it is Portico's to write.
	body := obj("Upstream", "echo", map[string]any{"endpoints": []any{map[string]any{"address": "127.0.0.1:9001"}}})
	body["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Accepted", "status": "False", "reason": "Fake"}}}
	rev := h.revision()
	h.want(h.do("PUT", "/api/v1/upstreams/echo", adminToken, "", body), 200, "put with a status")
	h.unchanged(rev, "a PUT differing only in status")
	o, err := h.st.Get(context.Background(), "Upstream", "", "echo")
	if err != nil || strings.Contains(string(o.JSON), "Fake") {
		t.Errorf("stored upstream = %s, %v", o.JSON, err)
	}
}

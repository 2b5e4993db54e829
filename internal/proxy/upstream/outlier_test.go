package upstream

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

func passiveDef(p ir.PassiveCheck, addrs ...string) ir.Upstream {
	def := ir.Upstream{Name: "p"}
	def.HealthCheck = &ir.HealthCheck{Passive: &p}
	for _, a := range addrs {
		def.Endpoints = append(def.Endpoints, ir.Endpoint{Address: a, Weight: 1})
	}
	return def
}

// TestPassiveEjectsFailingEndpoint sends real traffic to a good and a bad
// (502) endpoint; the bad one is ejected after 2 gateway errors in a row.
func TestPassiveEjectsFailingEndpoint(t *testing.T) {
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	defer bad.Close()
	badAddr := bad.Listener.Addr().String()
	var tr transitions
	opts := testOpts()
	opts.OnHealthChange = tr.hook
	_, u := buildDef(t, opts, passiveDef(ir.PassiveCheck{ConsecutiveGatewayErrors: 2,
		BaseEjectionMillis: 100, MaxEjectedPercent: 50}, good.Listener.Addr().String(), badAddr))
	for range 4 { // round-robin: two requests reach each endpoint
		resp, _, err := u.RoundTrip(newReq(t, "GET", "/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	h := u.Health()
	if !h.Endpoints[0].Available || h.Endpoints[1].Available || h.Endpoints[1].Ejections != 1 ||
		h.Endpoints[1].EjectedUntil.IsZero() || !h.Endpoints[1].Healthy {
		t.Fatalf("health = %+v", h)
	}
	waitFor(t, "return after the ejection time", u.Endpoints()[1].Available)
	if got := tr.list(); len(got) != 2 || got[0] != "p "+badAddr+" down" || got[1] != "p "+badAddr+" up" {
		t.Fatalf("transitions = %v", got)
	}
}

// TestEjectionTimeGrows: base × ejections, capped at max.
func TestEjectionTimeGrows(t *testing.T) {
	_, u := buildDef(t, testOpts(), passiveDef(ir.PassiveCheck{Consecutive5xx: 3,
		BaseEjectionMillis: 40, MaxEjectionMillis: 100, MaxEjectedPercent: 100}, "127.0.0.1:1", "127.0.0.1:2"))
	ep := u.Endpoints()[0]
	var got []time.Duration
	for i := range 4 {
		ep.Report(Result{Status: 500})
		ep.Report(Result{Status: 500})
		if !ep.Available() {
			t.Fatal("ejected before the threshold")
		}
		start := time.Now()
		ep.Report(Result{Kind: Timeout}) // a timeout counts as a 504
		if ep.Available() {
			t.Fatalf("ejection %d did not happen", i+1)
		}
		got = append(got, u.Health().Endpoints[0].EjectedUntil.Sub(start).Round(10*time.Millisecond))
		waitFor(t, "return", ep.Available)
	}
	want := []time.Duration{40, 80, 100, 100}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("ejection times %v, want %v ms", got, want)
		}
	}
	if n := u.Health().Endpoints[0].Ejections; n != 4 {
		t.Fatalf("ejections = %d", n)
	}
}

// TestSuccessResetsCounters: failures interleaved with successes never eject.
func TestSuccessResetsCounters(t *testing.T) {
	_, u := buildDef(t, testOpts(), passiveDef(ir.PassiveCheck{Consecutive5xx: 2, ConsecutiveGatewayErrors: 2,
		ConsecutiveTimeouts: 2, MaxEjectedPercent: 100}, "127.0.0.1:1", "127.0.0.1:2"))
	ep := u.Endpoints()[0]
	for range 10 {
		ep.Report(Result{Kind: ConnectFailed})
		ep.Report(Result{Status: 200})
		ep.Report(Result{Kind: Timeout})
		ep.Report(Result{Status: 404})
		ep.Report(Result{Kind: Overloaded}) // never reached the endpoint: ignored
	}
	if !ep.Available() {
		t.Fatal("ejected although every failure was followed by a success")
	}
	// A 500 breaks a run of gateway errors but continues a run of 5xx.
	ep.Report(Result{Status: 503})
	ep.Report(Result{Status: 500})
	if ep.Available() {
		t.Fatal("two 5xx in a row must eject")
	}
}

// TestMaxEjectedPercent: with every endpoint failing, only the allowed
// share is ejected (at least one when there are two or more).
func TestMaxEjectedPercent(t *testing.T) {
	for _, tc := range []struct {
		n    int
		pct  int32
		want int
	}{{4, 10, 1}, {5, 50, 2}, {10, 35, 3}, {1, 10, 0}, {1, 100, 1}, {4, 0, 1} /* 0 = default 10% */} {
		var addrs []string
		for i := range tc.n {
			addrs = append(addrs, "127.0.0.1:"+itoa(1+i))
		}
		_, u := buildDef(t, testOpts(), passiveDef(ir.PassiveCheck{Consecutive5xx: 1,
			BaseEjectionMillis: 60_000, MaxEjectedPercent: tc.pct}, addrs...))
		for range 3 {
			for _, ep := range u.Endpoints() {
				ep.Report(Result{Status: 500})
			}
		}
		ejected := 0
		for _, ep := range u.Endpoints() {
			if !ep.Available() {
				ejected++
			}
		}
		if ejected != tc.want {
			t.Errorf("n=%d pct=%d: %d ejected, want %d", tc.n, tc.pct, ejected, tc.want)
		}
	}
}

func itoa(i int) string {
	b := []byte{}
	for ; i > 0 || len(b) == 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

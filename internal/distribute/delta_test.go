package distribute

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

func TestDiffAndApplyDelta(t *testing.T) {
	base := buildSnapshot("a", 5, 3, 9)
	base.Certificates = []ir.Certificate{{Name: "c1", Hosts: []string{"a"}, Cert: "x", Key: "y"}}
	base.StreamRoutes = []ir.StreamRoute{{Name: "s1", Listener: ":8000", Backends: []ir.Backend{{Upstream: "a-up-0", Weight: 1}}}}
	reversion(base)

	next := buildSnapshot("a", 5, 3, 9)
	next.Upstreams[2], next.Upstreams[3] = next.Upstreams[3], next.Upstreams[2] // reorder only
	next.Upstreams[4].Algorithm = "random"                                      // change
	next.Listeners = next.Listeners[:2]                                         // removal
	next.Consumers = []ir.Consumer{{Name: "bob"}}                               // new section
	reversion(next)

	d, ok := diff(base, next)
	if !ok {
		t.Fatal("diff refused")
	}
	if len(d.Upstreams.Upserts) != 1 || d.Upstreams.Upserts[0].Name != "a-up-4" {
		t.Errorf("upstream upserts: %v", d.Upstreams.Upserts)
	}
	if !slices.Equal(d.Listeners.Removals, []string{":8002"}) || len(d.Listeners.Upserts) != 0 {
		t.Errorf("listeners: %+v", d.Listeners)
	}
	if !slices.Equal(d.Certificates.Removals, []string{"c1"}) || !slices.Equal(d.StreamRoutes.Removals, []string{"s1"}) {
		t.Errorf("removed sections: %+v %+v", d.Certificates, d.StreamRoutes)
	}
	got, _, err := applyDelta(base, itemsOf(base), d)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, next) {
		t.Fatal("applyDelta did not rebuild the snapshot")
	}

	if _, _, err := applyDelta(next, nil, d); err == nil || !strings.Contains(err.Error(), "base") {
		t.Errorf("delta on the wrong base: %v", err)
	}
	d.Upstreams.Order = append(d.Upstreams.Order, "ghost")
	if _, _, err := applyDelta(base, nil, d); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("delta naming an unknown item: %v", err)
	}
}

func TestDiffRefusesDuplicateNames(t *testing.T) {
	base := buildSnapshot("a", 2, 1, 1)
	next := buildSnapshot("a", 2, 1, 1)
	next.Certificates = []ir.Certificate{{Name: "dup"}, {Name: "dup"}}
	if _, ok := diff(base, reversion(next)); ok {
		t.Fatal("diff accepted duplicate names")
	}
}

func TestBackoffBounds(t *testing.T) {
	minD, maxD := 200*time.Millisecond, 10*time.Second
	for n := range 20 {
		ceil := min(minD<<min(n, 10), maxD)
		for range 50 {
			d := backoff(minD, maxD, n)
			if d < ceil/2 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, ceil/2, ceil)
			}
		}
	}
}

// TestSlowDataPlaneCoalesces: a data plane stuck applying does not delay the others,
// and once free it gets the newest version, never the ones superseded meanwhile.
func TestSlowDataPlaneCoalesces(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	versions := []*ir.Snapshot{buildSnapshot("a", 1, 1, 1)}
	w.set("a", versions[0])
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})

	gate := make(chan struct{})
	slow := &dataPlane{}
	slow.fail = func(s *ir.Snapshot) error {
		if s.Version != versions[0].Version {
			slow.mu.Unlock() // let the test read what was applied while this waits
			<-gate
			slow.mu.Lock()
		}
		return nil
	}
	fast := &dataPlane{}
	labels := map[string]string{"gateway": "a"}
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "slow", Labels: labels}, slow)
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "fast", Labels: labels}, fast)
	eventually(t, "both on v1", func() bool {
		a := ackedBy(srv)
		return a["slow"] == versions[0].Version && a["fast"] == versions[0].Version
	})
	for i := 2; i <= 4; i++ {
		s := buildSnapshot("a", i, 1, 1)
		versions = append(versions, s)
		w.set("a", s)
		srv.Notify()
		eventually(t, fmt.Sprintf("fast to ack v%d", i), func() bool { return ackedBy(srv)["fast"] == s.Version })
		if i == 2 {
			eventually(t, "slow to receive v2", func() bool { return len(slow.received()) == 2 })
		}
	}
	if got := ackedBy(srv)["slow"]; got != versions[0].Version {
		t.Fatalf("slow acked %s while blocked", got)
	}
	close(gate)
	eventually(t, "slow to ack v4", func() bool { return ackedBy(srv)["slow"] == versions[3].Version })
	var applied []string
	slow.mu.Lock()
	for _, s := range slow.applied {
		applied = append(applied, s.Version)
	}
	slow.mu.Unlock()
	want := []string{versions[0].Version, versions[1].Version, versions[3].Version}
	if !slices.Equal(applied, want) {
		t.Fatalf("slow applied %v, want v1, v2, v4 %v (v3 superseded)", applied, want)
	}
}

package distribute

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// TestMixedLabelsAndNotify connects ten data planes serving gateway a, gateway b or
// everything; each gets its own snapshot, one Snapshot call per distinct label set;
// Notify pushes the new version to the ones it concerns and all ack.
func TestMixedLabelsAndNotify(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("a", buildSnapshot("a", 3, 1, 5))
	w.set("b", buildSnapshot("b", 2, 1, 4))
	w.set("all", buildSnapshot("all", 4, 2, 8))
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})

	gateways := []string{"a", "a", "a", "a", "b", "b", "b", "", "", ""}
	dps := make([]*dataPlane, len(gateways))
	for i, gw := range gateways {
		labels := map[string]string{"zone": "z1"}
		if gw != "" {
			labels["gateway"] = gw
		}
		dps[i] = &dataPlane{}
		runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: fmt.Sprintf("dp-%d", i), Labels: labels}, dps[i])
	}
	want := func(i int) *ir.Snapshot {
		if gateways[i] == "" {
			return w.get("all")
		}
		return w.get(gateways[i])
	}
	allAcked := func() bool {
		acked := ackedBy(srv)
		for i := range gateways {
			if acked[fmt.Sprintf("dp-%d", i)] != want(i).Version {
				return false
			}
		}
		return true
	}
	eventually(t, "ten data planes to ack their snapshots", allAcked)
	for i, dp := range dps {
		if got := mustJSON(t, dp.last()); got != mustJSON(t, want(i)) {
			t.Errorf("dp-%d (gateway %q) applied the wrong snapshot", i, gateways[i])
		}
	}
	if n := w.calls.Load(); n != 3 {
		t.Errorf("Snapshot called %d times for 3 label sets", n)
	}
	for _, dp := range srv.DataPlanes() {
		if dp.CommonName != "dataplane" || !strings.HasPrefix(dp.Address, "127.0.0.1:") || dp.ConnectedAt.IsZero() || dp.Stale || dp.Labels["zone"] != "z1" {
			t.Errorf("data plane info: %+v", dp)
		}
	}

	// Gateway a changes; b and "all" do not.
	next := buildSnapshot("a", 3, 1, 5)
	next.Upstreams[0].Endpoints[0].Address = "10.9.9.9:80"
	w.set("a", reversion(next))
	before := w.calls.Load()
	srv.Notify()
	eventually(t, "all data planes to ack after Notify", allAcked)
	if n := w.calls.Load() - before; n != 3 {
		t.Errorf("Notify called Snapshot %d times for 3 label sets", n)
	}
	for i, dp := range dps {
		wantApplied := 1
		if gateways[i] == "a" {
			wantApplied = 2
		}
		if n := dp.appliedCount(); n != wantApplied {
			t.Errorf("dp-%d (gateway %q) applied %d snapshots, want %d", i, gateways[i], n, wantApplied)
		}
	}
}

// TestNotifyEqualLabelsOneSnapshotCall checks the per-Notify cache: ten data planes with
// equal labels cost one Snapshot call.
func TestNotifyEqualLabelsOneSnapshotCall(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("a", buildSnapshot("a", 1, 1, 1))
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	for i := range 10 {
		runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: fmt.Sprintf("dp-%d", i), Labels: map[string]string{"gateway": "a"}}, &dataPlane{})
	}
	eventually(t, "ten data planes", func() bool { return len(srv.DataPlanes()) == 10 })
	for _, v := range []int{2, 3} {
		w.set("a", buildSnapshot("a", v, 1, v))
		before := w.calls.Load()
		srv.Notify()
		eventually(t, "acks", func() bool {
			for _, a := range ackedBy(srv) {
				if a != w.get("a").Version {
					return false
				}
			}
			return true
		})
		if n := w.calls.Load() - before; n != 1 {
			t.Errorf("Notify for 10 equal data planes called Snapshot %d times", n)
		}
	}
}

// TestDeltaForSmallChange checks that a small change to a big snapshot travels as a
// delta and rebuilds to exactly the server's snapshot.
func TestDeltaForSmallChange(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("a", buildSnapshot("a", 2000, 20, 1900))
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	dp := &dataPlane{}
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "dp", Labels: map[string]string{"gateway": "a"}}, dp)
	eventually(t, "first ack", func() bool { return ackedBy(srv)["dp"] == w.get("a").Version })

	next := buildSnapshot("a", 2000, 20, 1900)
	next.Upstreams[1500].Endpoints[0].Address = "192.0.2.1:80"             // changed
	next.Upstreams = slices.Delete(next.Upstreams, 1999, 2000)             // removed (unused)
	next.Consumers = []ir.Consumer{{Name: "alice", Groups: []string{"x"}}} // added section
	w.set("a", reversion(next))
	srv.Notify()
	eventually(t, "ack of the delta", func() bool { return ackedBy(srv)["dp"] == next.Version })

	if got := dp.received(); !slices.Equal(got, []string{"snapshot", "delta"}) {
		t.Fatalf("messages received: %v, want a snapshot then a delta", got)
	}
	if got, want := mustJSON(t, dp.last()), mustJSON(t, next); got != want {
		t.Fatal("the snapshot rebuilt from the delta differs from the server's")
	}
	full, delta := srv.prepare(labelKey(map[string]string{"gateway": "a"}), nil), 0
	if msg, isDelta := full.message(buildSnapshot("a", 2000, 20, 1900)); isDelta {
		delta = len(msg)
	}
	if delta == 0 || delta*10 > len(full.full) {
		t.Errorf("delta %d bytes vs full %d bytes: expected at least 10× smaller", delta, len(full.full))
	}
}

// TestDeltaNotUsedWhenLarger: when most of a snapshot changes, the full snapshot is sent.
func TestDeltaNotUsedWhenLarger(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("a", buildSnapshot("a", 50, 1, 50))
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	dp := &dataPlane{}
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "dp", Labels: map[string]string{"gateway": "a"}}, dp)
	eventually(t, "first ack", func() bool { return ackedBy(srv)["dp"] == w.get("a").Version })
	w.set("a", buildSnapshot("b", 50, 1, 50))
	srv.Notify()
	eventually(t, "second ack", func() bool { return ackedBy(srv)["dp"] == w.get("a").Version })
	if got := dp.received(); !slices.Equal(got, []string{"snapshot", "snapshot"}) {
		t.Fatalf("messages received: %v, want two full snapshots", got)
	}
}

// TestResyncOnVersionMismatch: a delta that does not rebuild the announced version (here
// an upsert altered on the way; a data plane that drifted from what the server believes
// looks the same) makes the data plane ask for a full snapshot. The data plane reuses
// the item hashes of the snapshot it runs, so drift by modifying an applied snapshot in
// place, which ClientOptions.Apply forbids, is not what this detects.
func TestResyncOnVersionMismatch(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("a", buildSnapshot("a", 500, 5, 500))
	var nacks []string
	var mu sync.Mutex
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot,
		OnNack: func(_ DataPlane, v, e string) { mu.Lock(); nacks = append(nacks, v); mu.Unlock() }})
	dp := &dataPlane{}
	first := true
	dp.mangle = func(m *ServerMessage) {
		if m.Delta != nil && first { // corrupt the first delta
			first = false
			m.Delta.Upstreams.Upserts[0].Endpoints[0].Weight = 7
		}
	}
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "dp", Labels: map[string]string{"gateway": "a"}}, dp)
	eventually(t, "first ack", func() bool { return ackedBy(srv)["dp"] == w.get("a").Version })

	next := buildSnapshot("a", 500, 5, 500)
	next.Upstreams[10].Endpoints[0].Address = "192.0.2.1:80"
	w.set("a", reversion(next))
	srv.Notify()
	eventually(t, "ack after resync", func() bool { return ackedBy(srv)["dp"] == next.Version })
	if got := dp.received(); !slices.Equal(got, []string{"snapshot", "delta", "snapshot"}) {
		t.Fatalf("messages received: %v, want snapshot, delta, then a full snapshot", got)
	}
	if got, want := mustJSON(t, dp.last()), mustJSON(t, next); got != want {
		t.Fatal("after the resync the data plane runs a different snapshot")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(nacks) != 0 || srv.DataPlanes()[0].LastNack != nil {
		t.Errorf("a resync is not a rejection, yet OnNack saw %v", nacks)
	}
}

// TestNackKeepsLastGood: an Apply error is nacked, reaches OnNack and DataPlanes, the data
// plane keeps its snapshot, and the rejected version is not pushed again.
func TestNackKeepsLastGood(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	good := buildSnapshot("a", 3, 1, 3)
	w.set("a", good)
	type nackCall struct {
		id, version, err string
	}
	nacks := make(chan nackCall, 10)
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot,
		OnNack: func(dp DataPlane, v, e string) { nacks <- nackCall{dp.ID, v, e} }})
	dp := &dataPlane{fail: func(s *ir.Snapshot) error {
		for _, u := range s.Upstreams {
			if u.Name == "poison" {
				return fmt.Errorf("cannot build upstream %q", u.Name)
			}
		}
		return nil
	}}
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "dp-x", Labels: map[string]string{"gateway": "a"}}, dp)
	eventually(t, "first ack", func() bool { return ackedBy(srv)["dp-x"] == good.Version })

	bad := buildSnapshot("a", 3, 1, 3)
	bad.Upstreams = append(bad.Upstreams, ir.Upstream{Name: "poison", Protocol: "http", Algorithm: "round-robin"})
	w.set("a", reversion(bad))
	srv.Notify()
	select {
	case n := <-nacks:
		if n.id != "dp-x" || n.version != bad.Version || !strings.Contains(n.err, `cannot build upstream "poison"`) {
			t.Fatalf("OnNack(%+v)", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no nack")
	}
	info := srv.DataPlanes()[0]
	if info.LastNack == nil || info.LastNack.Version != bad.Version || info.LastNack.Time.IsZero() || info.AckedVersion != good.Version {
		t.Fatalf("data plane after nack: %+v (lastNack %+v)", info, info.LastNack)
	}
	if dp.last().Version != good.Version || dp.appliedCount() != 1 {
		t.Fatal("the data plane did not keep its last good snapshot")
	}

	srv.Notify() // same content again: not pushed again
	time.Sleep(200 * time.Millisecond)
	if got := dp.received(); len(got) != 2 {
		t.Fatalf("the rejected version was pushed again: %v", got)
	}

	fixed := buildSnapshot("a", 4, 1, 3)
	w.set("a", fixed)
	srv.Notify()
	eventually(t, "ack of the fixed version", func() bool { return ackedBy(srv)["dp-x"] == fixed.Version })
}

// TestSnapshotErrorKeepsStreamOpen: while the control plane cannot compute a data
// plane's snapshot the stream stays up with nothing pushed; the next Notify delivers.
func TestSnapshotErrorKeepsStreamOpen(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	dp := &dataPlane{}
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "dp", Labels: map[string]string{"gateway": "c"}}, dp)
	eventually(t, "the data plane to connect", func() bool { return len(srv.DataPlanes()) == 1 })
	time.Sleep(100 * time.Millisecond)
	if info := srv.DataPlanes()[0]; info.SentVersion != "" || len(dp.received()) != 0 {
		t.Fatalf("something was pushed without a snapshot: %+v", info)
	}
	w.set("c", buildSnapshot("c", 1, 1, 1))
	srv.Notify()
	eventually(t, "ack", func() bool { return ackedBy(srv)["dp"] == w.get("c").Version })
	if info := srv.DataPlanes()[0]; info.SentVersion != info.AckedVersion {
		t.Fatalf("after the push: %+v", info)
	}
}

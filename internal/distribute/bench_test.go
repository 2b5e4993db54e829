package distribute

import (
	"encoding/json"
	"fmt"
	"testing"

	"portico.dev/portico/internal/ir"
)

// BenchmarkEncodeSnapshot10kRoutes measures one encoding of a 10k-route snapshot, which
// Notify does once per distinct label set.
func BenchmarkEncodeSnapshot10kRoutes(b *testing.B) {
	s := buildSnapshot("a", 100, 10, 10000)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		msg, err := json.Marshal(ServerMessage{Snapshot: &SnapshotMessage{Version: s.Version, Snapshot: s}})
		if err != nil {
			b.Fatal(err)
		}
		n = len(msg)
	}
	b.ReportMetric(float64(n), "msg-bytes")
}

// BenchmarkPush10kRoutesTo10Clients measures Notify → every one of 10 data planes
// (equal labels, over mTLS on loopback) has decoded, verified, validated and applied
// the new version. "full" replaces every route; "delta" changes one route (one of ten
// listeners travels).
func BenchmarkPush10kRoutesTo10Clients(b *testing.B) {
	b.Run("full", func(b *testing.B) {
		benchPush(b, buildSnapshot("a", 100, 10, 10000), buildSnapshot("b", 100, 10, 10000))
	})
	b.Run("delta", func(b *testing.B) {
		other := buildSnapshot("a", 100, 10, 10000)
		other.Listeners[3].VirtualHosts[0].Routes[7].Path.Value = "/changed"
		benchPush(b, buildSnapshot("a", 100, 10, 10000), reversion(other))
	})
}

func benchPush(b *testing.B, snaps ...*ir.Snapshot) {
	const clients = 10
	p := newPKI(b)
	w := newWorld()
	w.set("a", snaps[0])
	srv, addr := startServer(b, ServerOptions{TLS: p.serverTLS(b), Snapshot: w.snapshot})
	applied := make(chan string, clients*4)
	for i := range clients {
		runClient(b, ClientOptions{
			Address: addr, TLS: p.clientTLS(b, p.dir), ID: fmt.Sprintf("dp-%d", i), Labels: map[string]string{"gateway": "a"},
			Apply: func(s *ir.Snapshot) error { applied <- s.Version; return nil },
		}, nil)
	}
	wait := func(version string) {
		for n := 0; n < clients; {
			if <-applied == version {
				n++
			}
		}
	}
	wait(snaps[0].Version)
	eventually(b, "acks", func() bool {
		for _, v := range ackedBy(srv) {
			if v != snaps[0].Version {
				return false
			}
		}
		return len(ackedBy(srv)) == clients
	})
	key := labelKey(map[string]string{"gateway": "a"})
	var wire, full int
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		next := snaps[i%len(snaps)]
		w.set("a", next)
		srv.Notify()
		wait(next.Version)
		pr := srv.prepare(key, nil)
		msg, _ := pr.message(snaps[(i-1)%len(snaps)])
		wire, full = len(msg), len(pr.full)
	}
	b.ReportMetric(float64(wire), "wire-bytes/client")
	b.ReportMetric(float64(full), "full-bytes")
}

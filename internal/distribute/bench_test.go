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

// buildHostsSnapshot is the data-plane scale shape: one HTTP listener with hosts virtual
// hosts of perHost routes each, over 100 upstreams.
func buildHostsSnapshot(gw string, hosts, perHost int) *ir.Snapshot {
	s := buildSnapshot(gw, 100, 0, 0)
	l := ir.Listener{Name: ":8080", Port: 8080, Protocol: ir.HTTP, Gateways: []string{gw + "/http"}}
	for h := range hosts {
		vh := ir.VirtualHost{Hostname: fmt.Sprintf("h%d.example", h)}
		for r := range perHost {
			n := h*perHost + r
			vh.Routes = append(vh.Routes, ir.Route{
				Name: fmt.Sprintf("%s/route-%d", gw, n), Gateway: gw + "/http",
				Path:     ir.PathMatch{Type: ir.MatchPrefix, Value: fmt.Sprintf("/svc-%d", n)},
				Backends: []ir.Backend{{Upstream: fmt.Sprintf("%s-up-%d", gw, n%100), Weight: 1}},
			})
		}
		l.VirtualHosts = append(l.VirtualHosts, vh)
	}
	s.Listeners = []ir.Listener{l}
	return reversion(s)
}

// oneRouteChanged returns s with one route's path changed.
func oneRouteChanged(s *ir.Snapshot, listener, host, route int) *ir.Snapshot {
	var c ir.Snapshot
	b, err := json.Marshal(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		panic(err)
	}
	c.Listeners[listener].VirtualHosts[host].Routes[route].Path.Value = "/changed"
	return reversion(&c)
}

// BenchmarkPushHostsTo10Clients is the push of a one-route change to 10 data planes for
// the data-plane scale shape: one listener, 100 virtual hosts of 100 routes.
func BenchmarkPushHostsTo10Clients(b *testing.B) {
	base := buildHostsSnapshot("a", 100, 100)
	benchPush(b, base, oneRouteChanged(base, 0, 42, 7))
}

// BenchmarkDataPlaneDelta is what one data plane spends on a one-route delta of a
// 10k-route snapshot (one listener, 100 virtual hosts of 100 routes): decoding the
// message, rebuilding and verifying the snapshot, validating it (Apply is a no-op).
// "server" is the control plane's side: diff and encode, once per base version.
func BenchmarkDataPlaneDelta(b *testing.B) {
	base := buildHostsSnapshot("a", 100, 100)
	next := oneRouteChanged(base, 0, 42, 7)
	d, ok := diff(base, next)
	if !ok {
		b.Fatal("diff refused")
	}
	msg, err := json.Marshal(ServerMessage{Delta: d})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("server", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, _ := diff(base, next)
			if _, err := json.Marshal(ServerMessage{Delta: d}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client", func(b *testing.B) { benchClientDelta(b, base, msg, "") })
	// client+cache also writes the cache file (atomically, with fsync), as data planes do.
	b.Run("client+cache", func(b *testing.B) { benchClientDelta(b, base, msg, b.TempDir()+"/cache.json") })
}

func benchClientDelta(b *testing.B, base *ir.Snapshot, msg []byte, cacheFile string) {
	{
		c := newBenchClient(b, base)
		c.opts.CacheFile = cacheFile
		b.ReportAllocs()
		for b.Loop() {
			c.reset()
			var m ServerMessage
			if err := (Codec{}).Unmarshal(msg, &m); err != nil {
				b.Fatal(err)
			}
			if r := c.handle(&m); r == nil || r.Ack == nil {
				b.Fatalf("not acked: %+v", r)
			}
		}
		b.ReportMetric(float64(len(msg)), "wire-bytes")
	}
}

// benchClient is a client whose current snapshot is reset to base before each message.
type benchClient struct {
	*client
	base      *ir.Snapshot
	baseItems *snapshotItems
}

func newBenchClient(b *testing.B, base *ir.Snapshot) *benchClient {
	c := &client{opts: ClientOptions{Apply: func(*ir.Snapshot) error { return nil }}, log: quietLogger()}
	if err := c.apply(base, itemsOf(base)); err != nil {
		b.Fatal(err)
	}
	return &benchClient{client: c, base: base, baseItems: c.items}
}

func (c *benchClient) reset() { c.current, c.items = c.base, c.baseItems }

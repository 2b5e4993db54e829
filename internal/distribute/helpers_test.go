package distribute

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/pki"
)

// testPKI is a folder written by pki.Init: a CA, the control plane's serving
// certificate, a data-plane client certificate and the bootstrap token.
type testPKI struct {
	dir   string
	ca    *pki.CA
	token string
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Init(dir, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	token, err := pki.ReadToken(filepath.Join(dir, pki.BootstrapTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{dir: dir, ca: ca, token: token}
}

func (p *testPKI) path(name string) string { return filepath.Join(p.dir, name) }

func (p *testPKI) serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	cfg, err := pki.ServerTLS(p.path(pki.ControlPlaneCertFile), p.path(pki.ControlPlaneKeyFile), p.path(pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// clientTLS trusts this CA and presents the data-plane certificate of certDir (a
// testPKI folder, possibly of another CA); certDir "" presents no certificate.
func (p *testPKI) clientTLS(t testing.TB, certDir string) *tls.Config {
	t.Helper()
	var cert, key string
	if certDir != "" {
		cert, key = filepath.Join(certDir, pki.DataPlaneCertFile), filepath.Join(certDir, pki.DataPlaneKeyFile)
	}
	cfg, err := pki.ClientTLS(cert, key, p.path(pki.CACertFile), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// world is the configuration the test control plane serves: one snapshot per gateway
// label value, and one for data planes without the label ("all").
type world struct {
	mu    sync.Mutex
	snaps map[string]*ir.Snapshot
	calls atomic.Int64
}

func newWorld() *world { return &world{snaps: map[string]*ir.Snapshot{}} }

func (w *world) set(key string, s *ir.Snapshot) {
	w.mu.Lock()
	w.snaps[key] = s
	w.mu.Unlock()
}

func (w *world) get(key string) *ir.Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snaps[key]
}

// snapshot is the SnapshotFunc: it selects by the gateway label.
func (w *world) snapshot(labels map[string]string) (*ir.Snapshot, error) {
	w.calls.Add(1)
	key := labels["gateway"]
	if key == "" {
		key = "all"
	}
	s := w.get(key)
	if s == nil {
		return nil, fmt.Errorf("no snapshot for gateway %q", key)
	}
	return s, nil
}

// buildSnapshot makes a valid snapshot for gateway gw: upstreams upstreams, listeners
// listeners and routes routes spread over the listeners.
func buildSnapshot(gw string, upstreams, listeners, routes int) *ir.Snapshot {
	s := &ir.Snapshot{}
	for i := range upstreams {
		s.Upstreams = append(s.Upstreams, ir.Upstream{
			Name: fmt.Sprintf("%s-up-%d", gw, i), Protocol: ir.UpstreamHTTP, Algorithm: "round-robin",
			Endpoints: []ir.Endpoint{{Address: fmt.Sprintf("10.%d.%d.%d:8080", i/65536%256, i/256%256, i%256), Weight: 1}},
		})
	}
	for l := range listeners {
		s.Listeners = append(s.Listeners, ir.Listener{
			Name: fmt.Sprintf(":%d", 8000+l), Port: int32(8000 + l), Protocol: ir.HTTP,
			Gateways: []string{gw + "/http"}, VirtualHosts: []ir.VirtualHost{{Hostname: "*"}},
		})
	}
	for r := range routes {
		if listeners == 0 {
			break
		}
		vh := &s.Listeners[r%listeners].VirtualHosts[0]
		vh.Routes = append(vh.Routes, ir.Route{
			Name: fmt.Sprintf("%s/route-%d", gw, r), Gateway: gw + "/http",
			Path:     ir.PathMatch{Type: ir.MatchPrefix, Value: fmt.Sprintf("/svc-%d", r)},
			Backends: []ir.Backend{{Upstream: fmt.Sprintf("%s-up-%d", gw, r%max(upstreams, 1)), Weight: 1}},
		})
	}
	s.ComputeVersion()
	return s
}

// reversion recomputes a changed snapshot's version.
func reversion(s *ir.Snapshot) *ir.Snapshot {
	s.ComputeVersion()
	return s
}

// dataPlane is a test data plane: it records what it applied.
type dataPlane struct {
	mu      sync.Mutex
	applied []*ir.Snapshot
	kinds   []string // "snapshot", "delta", "synced" as received
	fail    func(*ir.Snapshot) error
	mangle  func(*ServerMessage) // changes a message before the client handles it
}

func (d *dataPlane) apply(s *ir.Snapshot) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		if err := d.fail(s); err != nil {
			return err
		}
	}
	d.applied = append(d.applied, s)
	return nil
}

func (d *dataPlane) observe(m *ServerMessage) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mangle != nil {
		d.mangle(m)
	}
	switch {
	case m.Snapshot != nil:
		d.kinds = append(d.kinds, "snapshot")
	case m.Delta != nil:
		d.kinds = append(d.kinds, "delta")
	case m.Synced != nil:
		d.kinds = append(d.kinds, "synced")
	}
}

func (d *dataPlane) last() *ir.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.applied) == 0 {
		return nil
	}
	return d.applied[len(d.applied)-1]
}

func (d *dataPlane) appliedCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.applied)
}

func (d *dataPlane) received() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.kinds...)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer serves opts on a loopback port and stops it when the test ends.
func startServer(t testing.TB, opts ServerOptions) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, opts), ln.Addr().String()
}

func serveOn(t testing.TB, ln net.Listener, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s := NewServer(opts)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// runClient runs RunClient until the test ends.
func runClient(t testing.TB, opts ClientOptions, dp *dataPlane) {
	t.Helper()
	if dp != nil {
		opts.Apply, opts.observe = dp.apply, dp.observe
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RunClient(ctx, opts) }()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually waits up to 10s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ackedBy returns the acked versions of the connected data planes by ID.
func ackedBy(s *Server) map[string]string {
	out := map[string]string{}
	for _, dp := range s.DataPlanes() {
		out[dp.ID] = dp.AckedVersion
	}
	return out
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

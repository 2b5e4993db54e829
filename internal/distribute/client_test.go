package distribute

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"portico.dev/portico/internal/pki"
)

// rawStream opens a Stream by hand, for tests that misbehave on purpose.
func rawStream(t *testing.T, addr string, cfg *tls.Config) (grpc.ClientStream, error) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)), callOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return cc.NewStream(ctx, &serviceDesc.Streams[0], streamMethod)
}

// streamCode sends Hello and returns the status code the stream ends with.
func streamCode(t *testing.T, addr string, cfg *tls.Config) (codes.Code, error) {
	t.Helper()
	st, err := rawStream(t, addr, cfg)
	if err == nil {
		// SendMsg reports io.EOF when the server already ended the stream; the
		// status comes from RecvMsg.
		if err = st.SendMsg(&ClientMessage{Hello: &Hello{ID: "intruder"}}); err == nil || err == io.EOF {
			var m ServerMessage
			err = st.RecvMsg(&m)
		}
	}
	return status.Code(err), err
}

func TestStreamWithoutClientCertIsUnauthenticated(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("all", buildSnapshot("all", 1, 1, 1))
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	code, err := streamCode(t, addr, p.clientTLS(t, ""))
	if code != codes.Unauthenticated {
		t.Fatalf("stream without a client certificate: %v", err)
	}
	if len(srv.DataPlanes()) != 0 || w.calls.Load() != 0 {
		t.Fatal("an unauthenticated stream was recorded")
	}
}

func TestClientCertFromAnotherCAFailsHandshake(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	w := newWorld()
	w.set("all", buildSnapshot("all", 1, 1, 1))
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	code, err := streamCode(t, addr, p.clientTLS(t, other.dir))
	if code != codes.Unavailable || err == nil {
		t.Fatalf("stream with a foreign certificate: %v", err)
	}
	if len(srv.DataPlanes()) != 0 {
		t.Fatal("a foreign data plane was recorded")
	}
}

func TestBootstrap(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("all", buildSnapshot("all", 1, 1, 1))
	srv, addr := startServer(t, ServerOptions{
		TLS: p.serverTLS(t), Snapshot: w.snapshot, BootstrapToken: p.token, CAPEM: p.ca.CertPEM,
		Sign: func(csr []byte) ([]byte, error) { return p.ca.SignCSR(csr, time.Hour) },
	})
	caPEM := p.ca.CertPEM
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "dp.crt"), filepath.Join(dir, "dp.key")
	ctx := context.Background()

	err := Bootstrap(ctx, addr, caPEM, "wrong-"+p.token, certFile, keyFile, "edge-1")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("wrong token: %v", err)
	}
	if _, statErr := os.Stat(certFile); !os.IsNotExist(statErr) {
		t.Fatal("a denied bootstrap wrote the certificate file")
	}
	_, port, _ := net.SplitHostPort(addr)
	// ":port" is the local machine, verified as localhost.
	if err := Bootstrap(ctx, ":"+port, caPEM, p.token, certFile, keyFile, "edge-1"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{certFile, keyFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	cfg, err := pki.ClientTLS(certFile, keyFile, p.path(pki.CACertFile), "")
	if err != nil {
		t.Fatal(err)
	}
	dp := &dataPlane{}
	runClient(t, ClientOptions{Address: addr, TLS: cfg, ID: "edge-1"}, dp)
	eventually(t, "the bootstrapped data plane to ack", func() bool { return ackedBy(srv)["edge-1"] == w.get("all").Version })
	if cn := srv.DataPlanes()[0].CommonName; cn != "edge-1" {
		t.Fatalf("common name %q", cn)
	}
}

func TestBootstrapDisabled(t *testing.T) {
	p := newPKI(t)
	_, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: newWorld().snapshot})
	dir := t.TempDir()
	err := Bootstrap(context.Background(), addr, p.ca.CertPEM, "x", filepath.Join(dir, "c"), filepath.Join(dir, "k"), "n")
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("bootstrap without a token configured: %v", err)
	}
}

// TestReconnectAfterServerRestart: the client retries with backoff while the control
// plane is down, reconnects to a new one on the same address, and announces its
// version, so identical content is not sent again.
func TestReconnectAfterServerRestart(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("all", buildSnapshot("all", 2, 1, 2))
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	dp := &dataPlane{}
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "dp"}, dp)
	eventually(t, "first ack", func() bool { return ackedBy(srv)["dp"] == w.get("all").Version })

	srv.Stop()
	time.Sleep(300 * time.Millisecond) // a few failed attempts
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := serveOn(t, ln, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	eventually(t, "the client to reconnect", func() bool { return ackedBy(srv2)["dp"] == w.get("all").Version })
	eventually(t, "the synced confirmation", func() bool { return len(dp.received()) == 2 })
	if got := dp.received(); got[1] != "synced" || dp.appliedCount() != 1 {
		t.Fatalf("after reconnecting with the same content: received %v, applied %d", got, dp.appliedCount())
	}
}

func TestCacheFileAndStartFromCache(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("all", buildSnapshot("all", 3, 2, 6))
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	cache := filepath.Join(t.TempDir(), "snapshot.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunClient(ctx, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "dp", CacheFile: cache,
			Apply: (&dataPlane{}).apply, Logger: quietLogger()})
	}()
	eventually(t, "first ack", func() bool { return ackedBy(srv)["dp"] == w.get("all").Version })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("RunClient returned %v", err)
	}
	fi, err := os.Stat(cache)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", fi, err)
	}
	got, err := LoadCache(cache)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, w.get("all")) {
		t.Fatal("LoadCache did not round-trip the snapshot")
	}

	// A data plane started from the cache while the control plane is down serves it,
	// then connects and is in sync without the snapshot being sent again.
	srv.Stop()
	dp := &dataPlane{}
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "dp2", CacheFile: cache}, dp)
	eventually(t, "the cached snapshot to be applied", func() bool { return dp.appliedCount() == 1 })
	if dp.last().Version != w.get("all").Version {
		t.Fatal("started from the wrong snapshot")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := serveOn(t, ln, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot})
	eventually(t, "synced", func() bool { return ackedBy(srv2)["dp2"] == w.get("all").Version && len(dp.received()) == 1 })
	if got := dp.received(); got[0] != "synced" || dp.appliedCount() != 1 {
		t.Fatalf("received %v, applied %d", got, dp.appliedCount())
	}

	if err := os.WriteFile(cache, []byte(`{"version":"x","listeners":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCache(cache); err == nil || !strings.Contains(err.Error(), cache) {
		t.Fatalf("corrupt cache: %v", err)
	}
	if err := os.WriteFile(cache, []byte(`{"version":"0000000000000000"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCache(cache); err == nil || !strings.Contains(err.Error(), cache) {
		t.Fatalf("cache with a wrong version: %v", err)
	}
}

// TestHeartbeatStaleness: a data plane that stops heartbeating is marked stale after
// three intervals and its stream closed after the grace period; one that heartbeats
// stays fresh.
func TestHeartbeatStaleness(t *testing.T) {
	p := newPKI(t)
	w := newWorld()
	w.set("all", buildSnapshot("all", 1, 1, 1))
	hb := 50 * time.Millisecond
	srv, addr := startServer(t, ServerOptions{TLS: p.serverTLS(t), Snapshot: w.snapshot, Heartbeat: hb, Grace: 400 * time.Millisecond})
	runClient(t, ClientOptions{Address: addr, TLS: p.clientTLS(t, p.dir), ID: "alive", Heartbeat: hb / 2}, &dataPlane{})

	st, err := rawStream(t, addr, p.clientTLS(t, p.dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&ClientMessage{Hello: &Hello{ID: "silent"}}); err != nil {
		t.Fatal(err)
	}
	var m ServerMessage
	if err := st.RecvMsg(&m); err != nil || m.Snapshot == nil {
		t.Fatalf("first message: %+v %v", m, err)
	}
	start := time.Now()
	find := func(id string) *DataPlane {
		for _, dp := range srv.DataPlanes() {
			if dp.ID == id {
				return &dp
			}
		}
		return nil
	}
	eventually(t, "the silent data plane to be stale", func() bool { dp := find("silent"); return dp != nil && dp.Stale })
	if el := time.Since(start); el < 3*hb-20*time.Millisecond {
		t.Errorf("stale after %v, before 3 heartbeats", el)
	}
	if a := find("alive"); a == nil || a.Stale || a.LastHeartbeat.IsZero() {
		t.Errorf("the heartbeating data plane: %+v", a)
	}
	err = st.RecvMsg(&m)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("stream of the silent data plane ended with %v", err)
	}
	if el := time.Since(start); el < 3*hb+400*time.Millisecond-50*time.Millisecond {
		t.Errorf("closed after %v, before the grace period", el)
	}
	eventually(t, "the silent data plane to be removed", func() bool { return find("silent") == nil })
	if find("alive") == nil {
		t.Fatal("the heartbeating data plane was dropped")
	}
}

package test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestControlPlaneReplicasLabelsAndBootstrap runs two control-plane replicas over one
// PostgreSQL and two data planes, each connected to a different replica and serving a
// different Gateway: one with the certificate `portico init` made, one that obtains its
// certificate with the bootstrap token. A write through one replica reaches the data
// plane of the other; a data plane serves only its Gateway; a data plane's rejection
// shows on the Gateway's status.
func TestControlPlaneReplicasLabelsAndBootstrap(t *testing.T) {
	pg := startPrivatePostgres(t)
	backend := startEcho(t, 1)[0]

	a := newControlPlane(t, pg.dsn())
	a.name = "replica A"
	a.start(t)
	b := newControlPlane(t, pg.dsn())
	b.name = "replica B"
	b.dataDir = a.dataDir // one PKI for both replicas
	b.start(t)

	portA, portB := freePort(t), freePort(t)
	a.apply(t, fmt.Sprintf(`apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: gw-a}
spec: {listeners: [{name: http, port: %d, protocol: HTTP}]}
---
apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: gw-b}
spec: {listeners: [{name: http, port: %d, protocol: HTTP}]}
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: echo}
spec: {endpoints: [{address: %q}]}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: on-a}
spec: {gateways: [gw-a], matches: [{path: {type: PathPrefix, value: /a}}], backends: [{upstream: echo}]}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: on-b}
spec: {gateways: [gw-b], matches: [{path: {type: PathPrefix, value: /b}}], backends: [{upstream: echo}]}
`, portA, portB, backend))

	// Data plane 1: gateway gw-a, connected to replica B, certificate by bootstrap.
	certs1 := t.TempDir()
	copyFile(t, filepath.Join(a.dataDir, "ca.crt"), filepath.Join(certs1, "ca.crt"))
	dp1 := startBg(t, "data plane 1", "proxy", "--control-plane", b.xds, "--certs", certs1,
		"--bootstrap-token-file", filepath.Join(a.dataDir, "bootstrap.token"), "--data-dir", t.TempDir(),
		"--ops-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--access-log", "off", "--id", "dp-1", "--labels", "gateway=gw-a,zone=z1")
	// Data plane 2: gateway gw-b, connected to replica A, with the certificate from init.
	dp2 := startBg(t, "data plane 2", "proxy", "--control-plane", a.xds, "--certs", a.dataDir, "--data-dir", t.TempDir(),
		"--ops-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--access-log", "off", "--id", "dp-2", "--labels", "gateway=gw-b")

	urlA := fmt.Sprintf("http://127.0.0.1:%d", portA)
	urlB := fmt.Sprintf("http://127.0.0.1:%d", portB)
	waitServed(t, urlA+"/a", 20*time.Second, dp1, a.proc, b.proc)
	waitServed(t, urlB+"/b", 20*time.Second, dp2, a.proc, b.proc)
	if _, err := os.Stat(filepath.Join(certs1, "dataplane.crt")); err != nil {
		t.Fatalf("the bootstrapped data plane wrote no certificate: %v", err)
	}
	// Each data plane binds only its own Gateway's listener.
	if code, _ := status(http.DefaultClient, urlA+"/b"); code != 404 {
		t.Errorf("gw-a serves gw-b's route: %d", code)
	}
	if listening(portA) && listening(portB) {
		// Both ports are bound, one by each data plane: check by stopping dp2.
		dp2.kill()
		if listening(portB) {
			t.Errorf("port %d of gw-b is still bound after its only data plane stopped: data plane 1 bound it too", portB)
		}
	}

	// A write through replica A reaches data plane 1, which follows replica B.
	a.must(t, "PUT", "/api/v1/routes/late", "application/json",
		`{"apiVersion":"portico.dev/v1alpha1","kind":"Route","metadata":{"name":"late"},"spec":{"gateways":["gw-a"],"matches":[{"path":{"type":"Exact","value":"/late"}}],"backends":[{"upstream":"echo"}]}}`)
	waitServed(t, urlA+"/late", 10*time.Second, dp1, a.proc, b.proc)

	dp := b.waitConnected(t, "dp-1", 5*time.Second)
	if dp.AckedVersion == "" {
		t.Errorf("replica B lists dp-1 without an acked version: %+v", dp)
	}
	_, raw, _ := b.dataPlanes()
	for _, want := range []string{`"gateway":"gw-a"`, `"zone":"z1"`, `"version":`} {
		if !strings.Contains(raw, want) {
			t.Errorf("GET /api/v1/dataplanes lacks %s: %s", want, raw)
		}
	}

	// Move gw-a to a port something else holds: data plane 1 refuses the snapshot, keeps
	// serving the old one, and the refusal shows on gw-a's status.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldPort := held.Addr().(*net.TCPAddr).Port
	a.must(t, "PUT", "/api/v1/gateways/gw-a", "application/json",
		fmt.Sprintf(`{"apiVersion":"portico.dev/v1alpha1","kind":"Gateway","metadata":{"name":"gw-a"},"spec":{"listeners":[{"name":"http","port":%d,"protocol":"HTTP","address":"127.0.0.1"}]}}`, heldPort))
	waitCond(t, 10*time.Second, dp1, "gw-a's status shows data plane 1's rejection", func() (bool, string) {
		_, body, err := b.do("GET", "/api/v1/gateways/gw-a", "", "")
		var gw struct {
			Status struct {
				Conditions []struct{ Type, Status, Reason, Message string }
			}
		}
		_ = json.Unmarshal(body, &gw)
		for _, c := range gw.Status.Conditions {
			if c.Type == "Programmed" && c.Status == "False" && c.Reason == "RejectedByDataPlane" && strings.Contains(c.Message, "dp-1") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s %v", body, err)
	})
	if code, _ := status(http.DefaultClient, urlA+"/a"); code != 200 {
		t.Errorf("after the rejected snapshot, the last good one no longer serves: %d", code)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// listening reports whether something accepts connections on 127.0.0.1:port.
func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	"sigs.k8s.io/yaml"

	"portico.dev/portico/internal/echo"
	"portico.dev/portico/internal/testsupport/kubetest"
)

// TestKubernetesGatewayToNetnsBackend runs `portico run --kubeconfig` against a real
// kube-apiserver (hack/devcluster) and a backend that lives in a network namespace of its
// own, reached over a veth pair (198.18.0.1/30 on the host, 198.18.0.2/30 in the
// namespace): a Gateway API Gateway and HTTPRoute whose Service's EndpointSlice points at
// 198.18.0.2 become a listener on 127.0.0.1 that proxies to the namespace; the statuses are
// written back; an endpoint that turns not ready stops the traffic (503) and turning it
// ready again brings it back.
func TestKubernetesGatewayToNetnsBackend(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and a veth pair (CI runs this test as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("the ip command (iproute2) is required: %v", err)
	}
	bin := portico(t) // build first: the budget below starts once the cluster is up

	kubeconfig := kubetest.StartCluster(t)
	cfg, err := kubetest.Config(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kubetest.InstallGatewayCRDs(t, cfg)

	// Everything from here on has 90 s.
	began := time.Now()
	budget := began.Add(90 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), budget)
	defer cancel()
	within := func(d time.Duration) time.Duration { return min(d, time.Until(budget)) }
	step := func(what string) {
		t.Helper()
		t.Logf("[%6.2fs] %s", time.Since(began).Seconds(), what)
	}
	defer func() { step("done") }()

	// ---- the backend in its own network namespace ----
	netns := newTestNetns(t)
	echoPort := freePort(t) // any port: nothing else listens in a fresh namespace
	echoAddr := fmt.Sprintf("198.18.0.2:%d", echoPort)
	t.Logf("$ ip netns exec %s %s echo --listen %s", netns, bin, echoAddr)
	echoProc := startBgCommand(t, "echo in "+netns, "ip", "netns", "exec", netns, bin, "echo", "--listen", echoAddr)
	direct := &http.Client{Timeout: 2 * time.Second}
	waitCond(t, within(15*time.Second), echoProc, "the echo backend answers on "+echoAddr+" (from the host, over the veth pair)", func() (bool, string) {
		code, err := status(direct, "http://"+echoAddr+"/")
		return code == 200, fmt.Sprint(code, " ", err)
	})
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", echoProc.cmd.Process.Pid))
	step(fmt.Sprintf("echo backend up on %s (pid %d, %s)", echoAddr, echoProc.cmd.Process.Pid, strings.TrimSpace(string(comm))))

	// ---- portico run with the cluster as a source ----
	cp := newControlPlane(t, "")
	cp.name = "portico run"
	ops := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"run", "--kubeconfig", kubeconfig, "--data-dir", cp.dataDir, "--admin-addr", cp.admin,
		"--xds-addr", cp.xds, "--ops-addr", ops, "--demo-backends=", "--access-log", "off",
		"--kube-address", "127.0.0.1", "--listen-address", "127.0.0.1"}
	t.Logf("$ portico %s", strings.Join(args, " "))
	cp.proc = startBg(t, cp.name, args...)
	waitCond(t, within(20*time.Second), cp.proc, "admin API /readyz answers 200", func() (bool, string) {
		code, body, err := cp.do("GET", "/readyz", "", "")
		return err == nil && code == 200, fmt.Sprintf("%d %s %v", code, body, err)
	})
	tok, err := os.ReadFile(filepath.Join(cp.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	cp.token = strings.TrimSpace(string(tok))
	step("portico run ready (admin " + cp.admin + ", ops " + ops + ")")
	// `portico run` seeds an empty store with the quick start (Gateway `default` on :8080 and
	// :8443) and has no flag to skip that: delete its objects so only the cluster's remain.
	deleteStoreObjects(t, cp)
	step("quick-start objects deleted from the store")

	// ---- the Kubernetes objects ----
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := gwclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gwPort := freePort(t)
	const ns = "e2e"
	ready := true
	objects := []any{
		&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&gwv1.GatewayClass{TypeMeta: typeMeta("gateway.networking.k8s.io/v1", "GatewayClass"),
			ObjectMeta: metav1.ObjectMeta{Name: "portico"},
			Spec:       gwv1.GatewayClassSpec{ControllerName: "portico.dev/gateway-controller"}},
		&gwv1.Gateway{TypeMeta: typeMeta("gateway.networking.k8s.io/v1", "Gateway"),
			ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: ns},
			Spec: gwv1.GatewaySpec{GatewayClassName: "portico", Listeners: []gwv1.Listener{
				{Name: "http", Port: gwv1.PortNumber(gwPort), Protocol: gwv1.HTTPProtocolType},
			}}},
		&corev1.Service{TypeMeta: typeMeta("v1", "Service"),
			ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(echoPort)), Protocol: corev1.ProtocolTCP},
			}}},
		&discoveryv1.EndpointSlice{TypeMeta: typeMeta("discovery.k8s.io/v1", "EndpointSlice"),
			ObjectMeta:  metav1.ObjectMeta{Name: "echo-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.18.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(echoPort)), Protocol: ptrTo(corev1.ProtocolTCP)}}},
		&gwv1.HTTPRoute{TypeMeta: typeMeta("gateway.networking.k8s.io/v1", "HTTPRoute"),
			ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
			Spec: gwv1.HTTPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
				Hostnames:       []gwv1.Hostname{"echo.e2e.test"},
				Rules: []gwv1.HTTPRouteRule{{
					Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptrTo(gwv1.PathMatchPathPrefix), Value: ptrTo("/")}}},
					BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
						BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptrTo(gwv1.PortNumber(80))},
					}}},
				}},
			}},
	}
	for _, o := range objects {
		var err error
		switch o := o.(type) {
		case *corev1.Namespace:
			_, err = kc.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
		case *gwv1.GatewayClass:
			_, err = gc.GatewayV1().GatewayClasses().Create(ctx, o, metav1.CreateOptions{})
		case *gwv1.Gateway:
			_, err = gc.GatewayV1().Gateways(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = kc.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
		case *discoveryv1.EndpointSlice:
			_, err = kc.DiscoveryV1().EndpointSlices(ns).Create(ctx, o, metav1.CreateOptions{})
		case *gwv1.HTTPRoute:
			_, err = gc.GatewayV1().HTTPRoutes(ns).Create(ctx, o, metav1.CreateOptions{})
		}
		y, _ := yaml.Marshal(o)
		if err != nil {
			t.Fatalf("creating:\n%s\n%v", y, err)
		}
		t.Logf("created:\n%s", y)
	}
	step("Kubernetes objects created")

	// ---- traffic through the Gateway to the namespace ----
	gwURL := fmt.Sprintf("http://127.0.0.1:%d/hello", gwPort)
	client := &http.Client{Timeout: 3 * time.Second}
	var reply echo.Reply
	waitCond(t, within(30*time.Second), cp.proc, "GET "+gwURL+" (Host echo.e2e.test) answers 200", func() (bool, string) {
		code, _, body, err := hostGet(client, gwURL, "echo.e2e.test")
		if code != 200 {
			return false, fmt.Sprintf("%d %s %v", code, body, err)
		}
		reply = echo.Reply{}
		if err := json.Unmarshal(body, &reply); err != nil {
			return false, fmt.Sprintf("200 but not an echo reply (%v): %s", err, body)
		}
		return true, ""
	})
	code, hdr, body, _ := hostGet(client, gwURL, "echo.e2e.test")
	t.Logf("$ curl -H 'Host: echo.e2e.test' %s\n-> %d, X-Echo-Server: %s\n%s", gwURL, code, hdr.Get("X-Echo-Server"), body)
	if reply.Server != echoAddr || reply.Path != "/hello" || reply.Host != "echo.e2e.test" {
		t.Fatalf("echo reply: server %q path %q host %q; want server %q, path /hello, host echo.e2e.test", reply.Server, reply.Path, reply.Host, echoAddr)
	}
	step("200 from the backend in the namespace, server " + reply.Server)

	// ---- statuses written back ----
	var gwStatus, routeStatus string
	waitCond(t, within(20*time.Second), cp.proc, "Gateway e2e/gw Accepted=True, Programmed=True, address 127.0.0.1", func() (bool, string) {
		g, err := gc.GatewayV1().Gateways(ns).Get(ctx, "gw", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		y, _ := yaml.Marshal(g.Status)
		gwStatus = string(y)
		okAddr := false
		for _, a := range g.Status.Addresses {
			okAddr = okAddr || a.Value == "127.0.0.1"
		}
		return okAddr && meta.IsStatusConditionTrue(g.Status.Conditions, "Accepted") &&
			meta.IsStatusConditionTrue(g.Status.Conditions, "Programmed"), gwStatus
	})
	t.Logf("Gateway e2e/gw status:\n%s", gwStatus)
	waitCond(t, within(20*time.Second), cp.proc, "HTTPRoute e2e/echo parent Accepted=True, ResolvedRefs=True", func() (bool, string) {
		r, err := gc.GatewayV1().HTTPRoutes(ns).Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		y, _ := yaml.Marshal(r.Status)
		routeStatus = string(y)
		for _, p := range r.Status.Parents {
			if p.ControllerName == "portico.dev/gateway-controller" && p.ParentRef.Name == "gw" {
				return meta.IsStatusConditionTrue(p.Conditions, "Accepted") &&
					meta.IsStatusConditionTrue(p.Conditions, "ResolvedRefs"), routeStatus
			}
		}
		return false, routeStatus
	})
	t.Logf("HTTPRoute e2e/echo status:\n%s", routeStatus)
	step("statuses Accepted/Programmed and Accepted/ResolvedRefs")

	// ---- the endpoint turns not ready, then ready again ----
	setReady := func(v bool) {
		t.Helper()
		es, err := kc.DiscoveryV1().EndpointSlices(ns).Get(ctx, "echo-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		es.Endpoints[0].Conditions.Ready = &v
		if _, err := kc.DiscoveryV1().EndpointSlices(ns).Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Logf("EndpointSlice e2e/echo-1: endpoint 198.18.0.2 conditions.ready=%v", v)
	}
	waitStatus := func(want int) {
		t.Helper()
		waitCond(t, within(20*time.Second), cp.proc, fmt.Sprintf("GET %s (Host echo.e2e.test) answers %d", gwURL, want), func() (bool, string) {
			code, _, body, err := hostGet(client, gwURL, "echo.e2e.test")
			return code == want, fmt.Sprintf("%d %s %v", code, body, err)
		})
		code, _, body, err := hostGet(client, gwURL, "echo.e2e.test")
		t.Logf("$ curl -H 'Host: echo.e2e.test' %s\n-> %d %v\n%s", gwURL, code, err, body)
		if code != want {
			t.Fatalf("the answer changed back to %d", code)
		}
	}
	setReady(false)
	waitStatus(503)
	step("endpoint not ready: 503")
	setReady(true)
	waitStatus(200)
	if code, _, body, _ := hostGet(client, gwURL, "echo.e2e.test"); code == 200 {
		var r echo.Reply
		if err := json.Unmarshal(body, &r); err != nil || r.Server != echoAddr {
			t.Fatalf("after ready again: server %q (%v), want %q", r.Server, err, echoAddr)
		}
	}
	step("endpoint ready again: 200")
	if time.Now().After(budget) {
		t.Errorf("the test took %s after the cluster was up; the budget is 90s", time.Since(began))
	}
}

// newTestNetns creates a network namespace portico-e2e-<random> joined to the host by a
// veth pair: 198.18.0.1/30 on the host side, 198.18.0.2/30 in the namespace (and its
// loopback up). Cleanup deletes the host end of the pair (which deletes both) and the
// namespace; processes started in it later are stopped first (cleanups run last-in first).
func newTestNetns(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("ip", "-br", "addr").CombinedOutput(); err == nil && strings.Contains(string(out), "198.18.0.1/") {
		t.Fatalf("198.18.0.1 is already on an interface of this host (a leftover of an earlier run?):\n%s", out)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	netns := "portico-e2e-" + id
	hostIf, nsIf := "pe2e"+id+"h", "pe2e"+id+"n" // at most 15 characters
	ip := func(args ...string) error {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		t.Logf("$ ip %s%s", strings.Join(args, " "), strings.TrimRight("\n"+string(out), "\n"))
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if exec.Command("ip", "link", "show", hostIf).Run() == nil {
			if err := ip("link", "del", hostIf); err != nil {
				t.Error(err)
			}
		}
		if err := ip("netns", "del", netns); err != nil {
			t.Error(err)
		}
	})
	for _, args := range [][]string{
		{"netns", "add", netns},
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", netns},
		{"addr", "add", "198.18.0.1/30", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", netns, "addr", "add", "198.18.0.2/30", "dev", nsIf},
		{"-n", netns, "link", "set", nsIf, "up"},
		{"-n", netns, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	return netns
}

// deleteStoreObjects deletes every route, gateway, certificate and upstream of the store
// through the admin API (routes first: they refer to the others).
func deleteStoreObjects(t *testing.T, cp *controlPlane) {
	t.Helper()
	for _, kind := range []string{"routes", "gateways", "certificates", "upstreams"} {
		var list struct {
			Items []struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(cp.must(t, "GET", "/api/v1/"+kind, "", ""), &list); err != nil {
			t.Fatalf("GET /api/v1/%s: %v", kind, err)
		}
		for _, it := range list.Items {
			cp.must(t, "DELETE", "/api/v1/"+kind+"/"+it.Metadata.Name, "", "")
			t.Logf("DELETE /api/v1/%s/%s", kind, it.Metadata.Name)
		}
	}
}

// hostGet sends GET url with the Host header host.
func hostGet(c *http.Client, url, host string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func ptrTo[T any](v T) *T { return &v }

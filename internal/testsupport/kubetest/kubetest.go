// Package kubetest gives tests a real Kubernetes API: etcd and kube-apiserver on loopback
// (hack/devcluster, binaries from hack/kube-binaries) and the Gateway API CRDs of the
// gateway-api module in the module cache. Failing to get either fails the test: CI runs
// these tests.
package kubetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// RepoRoot walks up from the working directory to the portico module's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(data, []byte("module portico.dev/portico\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no portico go.mod above the working directory")
		}
		dir = parent
	}
}

// Up builds (or finds cached) etcd and kube-apiserver with hack/kube-binaries and starts
// them with `hack/devcluster up dir`. It returns the kubeconfig path and a function that
// runs `hack/devcluster down dir`; stop is non-nil (and must be called) even when err is
// not, since a half-started cluster may have left processes behind. The scripts' messages
// go to logw.
func Up(dir string, logw *os.File) (kubeconfig string, stop func(), err error) {
	stop = func() {}
	root, err := RepoRoot()
	if err != nil {
		return "", stop, err
	}
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "hack", "kube-binaries"))
	cmd.Stdout, cmd.Stderr = &out, logw
	if err := cmd.Run(); err != nil {
		return "", stop, fmt.Errorf("hack/kube-binaries: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	bin := lines[len(lines)-1]

	up := exec.Command(filepath.Join(root, "hack", "devcluster"), "up", dir)
	up.Env = append(os.Environ(), "PORTICO_KUBE_BIN="+bin)
	up.Stdout, up.Stderr = logw, logw
	stop = func() {
		down := exec.Command(filepath.Join(root, "hack", "devcluster"), "down", dir)
		down.Stdout, down.Stderr = logw, logw
		_ = down.Run()
	}
	if err := up.Run(); err != nil {
		return "", stop, fmt.Errorf("hack/devcluster up: %w", err)
	}
	return filepath.Join(dir, "kubeconfig"), stop, nil
}

// StartCluster starts a devcluster in a temp dir for this test, stopped at cleanup, and
// returns its kubeconfig path.
func StartCluster(t testing.TB) (kubeconfig string) {
	t.Helper()
	start := time.Now()
	dir := t.TempDir()
	kubeconfig, stop, err := Up(dir, os.Stderr)
	t.Cleanup(stop)
	if err != nil {
		t.Fatalf("starting a devcluster: %v", err)
	}
	t.Logf("devcluster up in %s (kubeconfig %s)", time.Since(start).Round(time.Millisecond), kubeconfig)
	return kubeconfig
}

// Config loads a kubeconfig with a QPS high enough for tests.
func Config(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// InstallGatewayCRDs installs the Gateway API CRDs for this test (see InstallGatewayAPI).
func InstallGatewayCRDs(t testing.TB, cfg *rest.Config) {
	t.Helper()
	start := time.Now()
	if err := InstallGatewayAPI(cfg); err != nil {
		t.Fatalf("installing the Gateway API CRDs: %v", err)
	}
	t.Logf("Gateway API CRDs installed in %s", time.Since(start).Round(time.Millisecond))
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallGatewayAPI applies the experimental channel CRDs (a superset of standard) of the
// gateway-api module in the module cache, waits until they are established and until
// discovery lists every served version of each.
func InstallGatewayAPI(cfg *rest.Config) error {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return fmt.Errorf("go list -m sigs.k8s.io/gateway-api: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "experimental", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRD files found (%v)", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, doc := range strings.Split(string(data), "\n---") {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if obj == nil || obj["kind"] != "CustomResourceDefinition" {
				continue // kustomization, ValidatingAdmissionPolicies
			}
			u := &unstructured.Unstructured{Object: obj}
			if _, err := dyn.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%s: %w", u.GetName(), err)
			}
			names = append(names, u.GetName())
		}
	}
	// want: group/version -> resources discovery must list.
	want := map[string][]string{}
	for _, n := range names {
		for {
			u, err := dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if established(u) {
				group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
				plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
				versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
				for _, v := range versions {
					m, _ := v.(map[string]any)
					if served, _ := m["served"].(bool); served {
						gv := group + "/" + fmt.Sprint(m["name"])
						want[gv] = append(want[gv], plural)
					}
				}
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not established: %w", n, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Discovery lags establishment a little; wait until every served kind is listed.
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	for gv, resources := range want {
		for {
			missing := missingResources(dc, gv, resources)
			if len(missing) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s %v are not in discovery: %w", gv, missing, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// missingResources returns those of resources that discovery does not list in gv.
func missingResources(dc discovery.DiscoveryInterface, gv string, resources []string) []string {
	served := map[string]bool{}
	if list, err := dc.ServerResourcesForGroupVersion(gv); err == nil && list != nil {
		for _, r := range list.APIResources {
			served[r.Name] = true
		}
	}
	var missing []string
	for _, r := range resources {
		if !served[r] {
			missing = append(missing, r)
		}
	}
	return missing
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

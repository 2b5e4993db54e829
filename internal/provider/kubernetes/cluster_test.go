package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
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
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// The tests of this package run against a real kube-apiserver and etcd on loopback
// (hack/devcluster), started once by TestMain. Failing to build the binaries or start the
// cluster fails the package: CI runs these tests.

// testConfig is the devcluster's rest.Config.
var testConfig *rest.Config

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "FAIL: kubernetes provider tests: "+format+"\n", args...)
		return 1
	}
	root, err := repoRoot()
	if err != nil {
		return fail("%v", err)
	}
	start := time.Now()
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "hack", "kube-binaries"))
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fail("hack/kube-binaries: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	bin := lines[len(lines)-1]

	dir, err := os.MkdirTemp("", "portico-kube-test-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(dir)
	up := exec.Command(filepath.Join(root, "hack", "devcluster"), "up", dir)
	up.Env = append(os.Environ(), "PORTICO_KUBE_BIN="+bin)
	up.Stdout, up.Stderr = &out, os.Stderr
	out.Reset()
	upErr := up.Run()
	defer func() {
		down := exec.Command(filepath.Join(root, "hack", "devcluster"), "down", dir)
		down.Stdout, down.Stderr = os.Stderr, os.Stderr
		_ = down.Run()
	}()
	if upErr != nil {
		return fail("hack/devcluster up: %v", upErr)
	}
	testConfig, err = clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return fail("kubeconfig: %v", err)
	}
	testConfig.QPS, testConfig.Burst = 200, 400
	if err := installGatewayAPI(testConfig); err != nil {
		return fail("installing the Gateway API CRDs: %v", err)
	}
	fmt.Fprintf(os.Stderr, "devcluster up and Gateway API installed in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// repoRoot walks up from the working directory to the module's go.mod.
func repoRoot() (string, error) {
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

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installGatewayAPI applies the experimental channel CRDs (a superset of standard) of the
// gateway-api module in the module cache and waits until they are established.
func installGatewayAPI(cfg *rest.Config) error {
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
	for _, n := range names {
		for {
			u, err := dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if established(u) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not established: %w", n, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Discovery lags establishment a little; wait until every v1 kind is listed.
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	p := &Provider{kube: kc, Logger: slog.New(slog.DiscardHandler)}
	for {
		if _, missing := p.discover(ctx); len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Gateway API kinds are not in discovery: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
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

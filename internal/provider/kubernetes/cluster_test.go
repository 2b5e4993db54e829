package kubernetes

import (
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"portico.dev/portico/internal/testsupport/kubetest"
)

// The tests of this package run against a real kube-apiserver and etcd on loopback
// (hack/devcluster, through internal/testsupport/kubetest), started once by TestMain.
// Failing to build the binaries or start the cluster fails the package: CI runs these tests.

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
	start := time.Now()
	dir, err := os.MkdirTemp("", "portico-kube-test-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(dir)
	kubeconfig, stop, err := kubetest.Up(dir, os.Stderr)
	defer stop()
	if err != nil {
		return fail("%v", err)
	}
	testConfig, err = kubetest.Config(kubeconfig)
	if err != nil {
		return fail("kubeconfig: %v", err)
	}
	if err := kubetest.InstallGatewayAPI(testConfig); err != nil {
		return fail("installing the Gateway API CRDs: %v", err)
	}
	fmt.Fprintf(os.Stderr, "devcluster up and Gateway API installed in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

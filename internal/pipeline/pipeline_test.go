package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

const good = `apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: u}
spec:
  endpoints: [{address: "127.0.0.1:1"}]
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: ok}
spec:
  backends: [{upstream: u}]
`

const brokenRoute = `---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: broken}
spec:
  matches: [{path: {type: Exact, value: /b}}]
  backends: [{upstream: missing}]
`

func parse(t *testing.T, doc string) *resource.Resources {
	t.Helper()
	res, err := resource.Parse("cfg.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestStrictRejectsAnyProblemNamingTheDocument(t *testing.T) {
	_, err := New(true, nil, Hooks{}).TranslateOnce(parse(t, good+brokenRoute))
	if err == nil {
		t.Fatal("strict pipeline accepted a route with a missing upstream")
	}
	for _, want := range []string{"cfg.yaml", "document 4", "Route/broken", "missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
}

// TestLenientServesTheRest: outside strict mode the valid route is served and the route
// whose only backend is missing stays routed without backends, so it answers 500 (the
// Gateway API rule) instead of falling through to another route.
func TestLenientServesTheRest(t *testing.T) {
	snap, err := New(false, nil, Hooks{}).TranslateOnce(parse(t, good+brokenRoute))
	if err != nil {
		t.Fatal(err)
	}
	backends := map[string]int{}
	for _, vh := range snap.Listeners[0].VirtualHosts {
		for _, r := range vh.Routes {
			backends[r.Name] = len(r.Backends)
		}
	}
	if len(backends) != 2 || backends["ok"] != 1 || backends["broken"] != 0 {
		t.Fatalf("routes and their backend counts: %v", backends)
	}
}

type fakePlane struct {
	mu      sync.Mutex
	applied []string
	fail    bool
}

func (f *fakePlane) Apply(s *ir.Snapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("port in use")
	}
	f.applied = append(f.applied, s.Version)
	return nil
}

func TestRunnersCarryResourcesToTheDataPlaneAndRecordRejects(t *testing.T) {
	var rejects []string
	var mu sync.Mutex
	p := New(true, nil, Hooks{Rejected: func(stage string, _ error) { mu.Lock(); rejects = append(rejects, stage); mu.Unlock() }})
	plane := &fakePlane{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.RunTranslator(ctx)
	go p.RunDataPlane(ctx, plane)

	p.Resources.Publish(parse(t, good))
	waitFor(t, func() bool { return p.State().Applied == 1 })
	first := p.State().ActiveVersion

	p.Resources.Publish(parse(t, good+brokenRoute)) // refused by translation
	waitFor(t, func() bool { return p.State().Rejected == 1 })

	plane.mu.Lock()
	plane.fail = true
	plane.mu.Unlock()
	p.Resources.Publish(parse(t, strings.Replace(good, "8080", "8081", 1))) // refused by the data plane
	waitFor(t, func() bool { return p.State().Rejected == 2 })

	st := p.State()
	if st.ActiveVersion != first || !strings.Contains(st.LastError, "port in use") {
		t.Fatalf("state after rejects: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(rejects, ",") != "translate,apply" {
		t.Fatalf("reject stages %v", rejects)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package controlplane

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

const twoGateways = `apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec: {listeners: [{name: http, port: 8080, protocol: HTTP}]}
---
apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: edge}
spec: {listeners: [{name: http, port: 9090, protocol: HTTP}]}
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: u}
spec: {endpoints: [{address: "127.0.0.1:1"}]}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: on-default}
spec: {backends: [{upstream: u}]}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: on-edge}
spec: {gateways: [edge], matches: [{path: {type: PathPrefix, value: /edge}}], backends: [{upstream: u}]}
`

func parse(t *testing.T, doc string) *resource.Resources {
	t.Helper()
	res, err := resource.Parse("cp.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ports(t *testing.T, c *ControlPlane, labels map[string]string) []int32 {
	t.Helper()
	s, err := c.Snapshot(labels)
	if err != nil || s == nil {
		t.Fatalf("snapshot for %v: %v %v", labels, s, err)
	}
	var out []int32
	for _, l := range s.Listeners {
		out = append(out, l.Port)
	}
	return out
}

func TestSnapshotPerGatewayLabel(t *testing.T) {
	c := New(nil)
	if s, _ := c.Snapshot(nil); s != nil || c.Ready() {
		t.Fatal("a snapshot before the first update")
	}
	var changes atomic.Int32
	c.OnChange(func() { changes.Add(1) })
	c.Update(parse(t, twoGateways), 7)
	if !c.Ready() || c.Revision() != 7 || changes.Load() != 1 {
		t.Fatalf("ready=%v revision=%d changes=%d", c.Ready(), c.Revision(), changes.Load())
	}
	if got := ports(t, c, nil); len(got) != 2 {
		t.Errorf("no gateway label: listeners %v, want both", got)
	}
	if got := ports(t, c, map[string]string{"gateway": "edge"}); len(got) != 1 || got[0] != 9090 {
		t.Errorf("gateway=edge: listeners %v", got)
	}
	if got := ports(t, c, map[string]string{"gateway": "edge+default"}); len(got) != 2 {
		t.Errorf("gateway=edge+default: listeners %v", got)
	}
	a, _ := c.Snapshot(map[string]string{"gateway": "default+edge"})
	b, _ := c.Snapshot(map[string]string{"gateway": "edge, default"})
	if a != b {
		t.Error("equal selections written differently are not shared")
	}
	edge, _ := c.Snapshot(map[string]string{"gateway": "edge"})
	if routes := edge.Listeners[0].VirtualHosts[0].Routes; len(routes) != 1 || routes[0].Name != "on-edge" {
		t.Errorf("edge routes: %+v", routes)
	}

	// The same content again changes nothing; a new route notifies.
	c.Update(parse(t, twoGateways), 8)
	if changes.Load() != 1 {
		t.Errorf("an unchanged update notified")
	}
	c.Update(parse(t, twoGateways+"---\napiVersion: portico.dev/v1alpha1\nkind: Route\nmetadata: {name: more}\nspec: {gateways: [edge], matches: [{path: {type: Exact, value: /more}}], backends: [{upstream: u}]}\n"), 9)
	if changes.Load() != 2 {
		t.Errorf("a changed update did not notify")
	}
	if edge2, _ := c.Snapshot(map[string]string{"gateway": "edge"}); edge2.Version == edge.Version {
		t.Error("the edge selection was not recomputed after a change")
	}
}

func TestNackReachesGatewayStatus(t *testing.T) {
	c := New(nil)
	c.Update(parse(t, twoGateways), 1)
	nack := NackFor("dp-1", map[string]string{"gateway": "edge"}, "v1", "listen tcp :9090: address already in use", time.Now())
	st := c.Statuses([]Nack{nack})
	edge := st[resource.Key{Kind: v1alpha1.KindGateway, Name: "edge"}]
	found := false
	for _, cond := range edge {
		if cond.Reason == ReasonRejected && cond.Status == "False" && strings.Contains(cond.Message, "dp-1") && strings.Contains(cond.Message, "address already in use") {
			found = true
		}
	}
	if !found {
		t.Fatalf("edge status lacks the nack: %+v", edge)
	}
	programmed := 0
	for _, cond := range edge {
		if cond.Type == v1alpha1.ConditionProgrammed {
			programmed++
		}
	}
	if programmed != 1 {
		t.Errorf("%d Programmed conditions, want the one rejection: %+v", programmed, edge)
	}
	for _, cond := range st[resource.Key{Kind: v1alpha1.KindGateway, Name: "default"}] {
		if cond.Reason == ReasonRejected {
			t.Fatal("the nack reached a gateway the data plane does not serve")
		}
	}
	for _, cond := range c.Statuses(nil)[resource.Key{Kind: v1alpha1.KindGateway, Name: "edge"}] {
		if cond.Reason == ReasonRejected {
			t.Fatal("a cleared nack is still shown")
		}
	}
}

// TestResourcesAtWaitsForTheRevision: a reader asking for a revision the control plane
// has not reached yet waits for the Update that brings it, and gives up at its deadline.
func TestResourcesAtWaitsForTheRevision(t *testing.T) {
	c := New(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, ok := c.ResourcesAt(ctx, 1); ok {
		t.Fatal("resources before any update")
	}
	first := parse(t, twoGateways)
	c.Update(first, 3)
	if res, ok := c.ResourcesAt(context.Background(), 2); !ok || res != first {
		t.Fatal("an older revision was not answered at once")
	}
	got := make(chan *resource.Resources, 1)
	go func() {
		res, _ := c.ResourcesAt(context.Background(), 5)
		got <- res
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-got:
		t.Fatal("answered before revision 5 arrived")
	default:
	}
	second := parse(t, twoGateways)
	c.Update(second, 5)
	select {
	case res := <-got:
		if res != second {
			t.Fatal("answered with the wrong state")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("still waiting after revision 5 arrived")
	}
}

// TestSelectionOfEveryGatewayIsTheFullSnapshot: labels naming every Gateway cost no
// second translation.
func TestSelectionOfEveryGatewayIsTheFullSnapshot(t *testing.T) {
	c := New(nil)
	c.Update(parse(t, twoGateways), 1)
	full, _ := c.Snapshot(nil)
	both, _ := c.Snapshot(map[string]string{"gateway": "default+edge"})
	if both != full {
		t.Error("a selection of every gateway was translated again")
	}
	if edge, _ := c.Snapshot(map[string]string{"gateway": "edge"}); edge == full {
		t.Error("a partial selection got the full snapshot")
	}
}

package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"portico.dev/portico/internal/kube/convert"
	"portico.dev/portico/internal/resource"
)

const dataPlaneAddress = "192.0.2.10"

var nsCounter atomic.Int64

// env is one test's namespace and clients.
type env struct {
	t    *testing.T
	ctx  context.Context
	ns   string
	kube kubernetes.Interface
	gw   gwclient.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	kc, err := kubernetes.NewForConfig(testConfig)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := gwclient.NewForConfig(testConfig)
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("t%d-%s", nsCounter.Add(1), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	if len(ns) > 60 {
		ns = ns[:60]
	}
	ns = strings.TrimRight(ns, "-")
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, ns: ns, kube: kc, gw: gc}
}

// recorder keeps what a provider published.
type recorder struct {
	mu     sync.Mutex
	latest *resource.Resources
	count  int
}

func (r *recorder) publish(res *resource.Resources) {
	r.mu.Lock()
	r.latest, r.count = res, r.count+1
	r.mu.Unlock()
}

func (r *recorder) get() (*resource.Resources, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest, r.count
}

// start runs a provider until the test ends.
func (e *env) start(p *Provider) *recorder {
	e.t.Helper()
	rec := &recorder{}
	p.Config = testConfig
	p.Publish = rec.publish
	p.Options.Addresses = []string{dataPlaneAddress}
	if testing.Verbose() {
		p.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	} else {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			e.t.Errorf("Run did not return after cancel")
		}
	})
	return rec
}

// eventually retries f until it returns nil or the timeout passes.
func (e *env) eventually(what string, timeout time.Duration, f func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// service creates a Service on port 80 (target 8080) with one ready endpoint.
func (e *env) service(name, ip string) {
	e.t.Helper()
	must[*corev1.Service](e.t)(e.kube.CoreV1().Services(e.ns).Create(e.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
		}},
	}, metav1.CreateOptions{}))
	ready := true
	must[*discoveryv1.EndpointSlice](e.t)(e.kube.DiscoveryV1().EndpointSlices(e.ns).Create(e.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-abc", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080)), Protocol: ptr(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{}))
}

func ptr[T any](v T) *T { return &v }

func findRoute(res *resource.Resources, ns, name string) (string, bool) {
	if res == nil {
		return "", false
	}
	for _, r := range res.Routes {
		if r.Metadata.Namespace == ns && r.Metadata.Name == name {
			js, _ := json.Marshal(r)
			return string(js), true
		}
	}
	return "", false
}

func findUpstream(res *resource.Resources, ns, name string) []string {
	if res == nil {
		return nil
	}
	for _, u := range res.Upstreams {
		if u.Metadata.Namespace == ns && u.Metadata.Name == name {
			var out []string
			for _, ep := range u.Spec.Endpoints {
				out = append(out, ep.Address)
			}
			return out
		}
	}
	return nil
}

func TestIngress(t *testing.T) {
	e := newEnv(t)
	must[*networkingv1.IngressClass](t)(e.kube.NetworkingV1().IngressClasses().Create(e.ctx, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns, Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec:       networkingv1.IngressClassSpec{Controller: convert.DefaultIngressController},
	}, metav1.CreateOptions{}))
	e.service("web", "198.18.0.10")
	prefix := networkingv1.PathTypePrefix
	must[*networkingv1.Ingress](t)(e.kube.NetworkingV1().Ingresses(e.ns).Create(e.ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "app.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}, metav1.CreateOptions{}))

	start := time.Now()
	rec := e.start(&Provider{})
	e.eventually("published route and upstream", 10*time.Second, func() error {
		res, _ := rec.get()
		js, ok := findRoute(res, e.ns, "web-r0-p0")
		if !ok {
			return fmt.Errorf("no Route %s/web-r0-p0", e.ns)
		}
		if !strings.Contains(js, "app.example.com") || !strings.Contains(js, "svc-web-80") {
			return fmt.Errorf("route %s", js)
		}
		if eps := findUpstream(res, e.ns, "svc-web-80"); len(eps) != 1 || eps[0] != "198.18.0.10:8080" {
			return fmt.Errorf("upstream endpoints %v", eps)
		}
		return nil
	})
	t.Logf("resources published %s after start", time.Since(start).Round(time.Millisecond))
	e.eventually("ingress status", 10*time.Second, func() error {
		ing, err := e.kube.NetworkingV1().Ingresses(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		lb := ing.Status.LoadBalancer.Ingress
		if len(lb) != 1 || lb[0].IP != dataPlaneAddress {
			return fmt.Errorf("status.loadBalancer %+v", ing.Status.LoadBalancer)
		}
		return nil
	})
}

// gatewaySetup creates a GatewayClass of ours, a Gateway with one HTTP listener, a
// Service and an HTTPRoute to it; extra parentRefs are added to the route.
func (e *env) gatewaySetup(class string, extraParents ...gwv1.ParentReference) {
	e.t.Helper()
	must[*gwv1.GatewayClass](e.t)(e.gw.GatewayV1().GatewayClasses().Create(e.ctx, &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: class},
		Spec:       gwv1.GatewayClassSpec{ControllerName: convert.DefaultControllerName},
	}, metav1.CreateOptions{}))
	must[*gwv1.Gateway](e.t)(e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gw"},
		Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(class), Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
		}},
	}, metav1.CreateOptions{}))
	e.service("echo", "198.18.0.20")
	must[*gwv1.HTTPRoute](e.t)(e.gw.GatewayV1().HTTPRoutes(e.ns).Create(e.ctx, &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "r"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: append([]gwv1.ParentReference{{Name: "gw"}}, extraParents...)},
			Hostnames:       []gwv1.Hostname{"echo.example.com"},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "echo", Port: ptr(gwv1.PortNumber(80))},
			}}}}},
		},
	}, metav1.CreateOptions{}))
}

// ourParent returns the route's parent status written by Portico.
func ourParent(r *gwv1.HTTPRoute) *gwv1.RouteParentStatus {
	for i, p := range r.Status.Parents {
		if p.ControllerName == convert.DefaultControllerName {
			return &r.Status.Parents[i]
		}
	}
	return nil
}

func condIs(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string) error {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return fmt.Errorf("no %s condition in %+v", typ, conds)
	}
	if c.Status != status || (reason != "" && c.Reason != reason) {
		return fmt.Errorf("%s is %s (%s: %s), want %s %s", typ, c.Status, c.Reason, c.Message, status, reason)
	}
	if c.LastTransitionTime.IsZero() {
		return fmt.Errorf("%s has no lastTransitionTime", typ)
	}
	return nil
}

// setBackend points the route's only backend at service.
func (e *env) setBackend(service string) {
	e.t.Helper()
	e.eventually("updating the route", 5*time.Second, func() error {
		r, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx, "r", metav1.GetOptions{})
		if err != nil {
			return err
		}
		r.Spec.Rules[0].BackendRefs[0].Name = gwv1.ObjectName(service)
		_, err = e.gw.GatewayV1().HTTPRoutes(e.ns).Update(e.ctx, r, metav1.UpdateOptions{})
		return err
	})
}

func TestGatewayAPI(t *testing.T) {
	e := newEnv(t)
	e.gatewaySetup(e.ns)
	rec := e.start(&Provider{})

	e.eventually("GatewayClass accepted", 10*time.Second, func() error {
		gc, err := e.gw.GatewayV1().GatewayClasses().Get(e.ctx, e.ns, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return condIs(gc.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
	})
	e.eventually("Gateway accepted and programmed", 10*time.Second, func() error {
		gw, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx, "gw", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := condIs(gw.Status.Conditions, "Accepted", metav1.ConditionTrue, ""); err != nil {
			return err
		}
		if err := condIs(gw.Status.Conditions, "Programmed", metav1.ConditionTrue, ""); err != nil {
			return err
		}
		if len(gw.Status.Addresses) != 1 || gw.Status.Addresses[0].Value != dataPlaneAddress {
			return fmt.Errorf("addresses %+v", gw.Status.Addresses)
		}
		if len(gw.Status.Listeners) != 1 || gw.Status.Listeners[0].AttachedRoutes != 1 {
			return fmt.Errorf("listeners %+v", gw.Status.Listeners)
		}
		return nil
	})
	var accepted metav1.Time
	e.eventually("HTTPRoute accepted", 10*time.Second, func() error {
		r, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx, "r", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p := ourParent(r)
		if p == nil {
			return fmt.Errorf("no parent status of ours: %+v", r.Status)
		}
		if err := condIs(p.Conditions, "Accepted", metav1.ConditionTrue, "Accepted"); err != nil {
			return err
		}
		accepted = meta.FindStatusCondition(p.Conditions, "Accepted").LastTransitionTime
		return condIs(p.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	})
	e.eventually("published route", 5*time.Second, func() error {
		res, _ := rec.get()
		for _, r := range res.Routes {
			if strings.HasPrefix(r.Metadata.Name, "httproute."+e.ns+".r.") && r.Metadata.Namespace == e.ns {
				return nil
			}
		}
		return fmt.Errorf("no httproute.%s.r.* Route", e.ns)
	})

	// lastTransitionTime has a one-second resolution: make a wrong refresh visible.
	time.Sleep(1100 * time.Millisecond)
	e.setBackend("missing")
	e.eventually("HTTPRoute ResolvedRefs=False", 10*time.Second, func() error {
		r, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx, "r", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p := ourParent(r)
		if p == nil {
			return fmt.Errorf("no parent status of ours")
		}
		if err := condIs(p.Conditions, "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound"); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(p.Conditions, "Accepted"); !c.LastTransitionTime.Equal(&accepted) {
			return fmt.Errorf("Accepted lastTransitionTime changed from %v to %v", accepted, c.LastTransitionTime)
		}
		return nil
	})
}

func TestDebounce(t *testing.T) {
	e := newEnv(t)
	must[*networkingv1.IngressClass](t)(e.kube.NetworkingV1().IngressClasses().Create(e.ctx, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns},
		Spec:       networkingv1.IngressClassSpec{Controller: convert.DefaultIngressController},
	}, metav1.CreateOptions{}))
	e.service("web", "198.18.0.30")
	class := e.ns
	prefix := networkingv1.PathTypePrefix
	ing := must[*networkingv1.Ingress](t)(e.kube.NetworkingV1().Ingresses(e.ns).Create(e.ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{IngressClassName: &class, Rules: []networkingv1.IngressRule{{
			Host: "debounce.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/start", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}, metav1.CreateOptions{}))
	rec := e.start(&Provider{Debounce: 300 * time.Millisecond})
	e.eventually("first publish", 10*time.Second, func() error {
		res, _ := rec.get()
		if js, ok := findRoute(res, e.ns, "web-r0-p0"); !ok || !strings.Contains(js, `"/start"`) {
			return fmt.Errorf("route not published yet")
		}
		return nil
	})
	// Let the status write (and its watch event) settle: it must not publish again.
	time.Sleep(700 * time.Millisecond)
	_, before := rec.get()

	const edits = 20
	begin := time.Now()
	for i := range edits {
		for {
			ing.Spec.Rules[0].HTTP.Paths[0].Path = fmt.Sprintf("/v%d", i)
			cur, err := e.kube.NetworkingV1().Ingresses(e.ns).Update(e.ctx, ing, metav1.UpdateOptions{})
			if err == nil {
				ing = cur
				break
			}
			if !apierrors.IsConflict(err) { // the status writer may have written in between
				t.Fatal(err)
			}
			ing = must[*networkingv1.Ingress](t)(e.kube.NetworkingV1().Ingresses(e.ns).Get(e.ctx, "web", metav1.GetOptions{}))
		}
	}
	t.Logf("%d edits in %s", edits, time.Since(begin).Round(time.Millisecond))
	want := fmt.Sprintf(`"/v%d"`, edits-1)
	e.eventually("last edit published", 10*time.Second, func() error {
		res, _ := rec.get()
		if js, _ := findRoute(res, e.ns, "web-r0-p0"); !strings.Contains(js, want) {
			return fmt.Errorf("route %s does not have %s", js, want)
		}
		return nil
	})
	time.Sleep(700 * time.Millisecond)
	_, after := rec.get()
	n := after - before
	t.Logf("%d edits, %d publishes", edits, n)
	if n < 1 || n > 4 {
		t.Fatalf("%d edits made %d publishes, want 1 to 4", edits, n)
	}
}

func TestStatusKeepsOtherControllers(t *testing.T) {
	e := newEnv(t)
	must[*gwv1.GatewayClass](t)(e.gw.GatewayV1().GatewayClasses().Create(e.ctx, &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-other"},
		Spec:       gwv1.GatewayClassSpec{ControllerName: "example.com/other"},
	}, metav1.CreateOptions{}))
	must[*gwv1.Gateway](t)(e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "other-gw"},
		Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(e.ns + "-other"), Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
		}},
	}, metav1.CreateOptions{}))
	e.gatewaySetup(e.ns, gwv1.ParentReference{Name: "other-gw"})

	// The other controller's entry, written before Portico starts.
	r := must[*gwv1.HTTPRoute](t)(e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx, "r", metav1.GetOptions{}))
	other := gwv1.RouteParentStatus{
		ParentRef:      r.Spec.ParentRefs[1],
		ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
			Message: "other", LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))}},
	}
	r.Status.Parents = []gwv1.RouteParentStatus{other}
	must[*gwv1.HTTPRoute](t)(e.gw.GatewayV1().HTTPRoutes(e.ns).UpdateStatus(e.ctx, r, metav1.UpdateOptions{}))

	e.start(&Provider{LeaderElection: true, LeaseNamespace: e.ns, LeaseName: "portico", Identity: "replica-a"})
	check := func(resolved metav1.ConditionStatus) func() error {
		return func() error {
			r, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx, "r", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p := ourParent(r)
			if p == nil {
				return fmt.Errorf("no parent status of ours: %+v", r.Status.Parents)
			}
			if err := condIs(p.Conditions, "ResolvedRefs", resolved, ""); err != nil {
				return err
			}
			if len(r.Status.Parents) != 2 {
				return fmt.Errorf("%d parent statuses, want 2", len(r.Status.Parents))
			}
			for _, q := range r.Status.Parents {
				if q.ControllerName == other.ControllerName {
					if !q.Conditions[0].LastTransitionTime.Equal(&other.Conditions[0].LastTransitionTime) || q.Conditions[0].Message != "other" {
						return fmt.Errorf("the other controller's entry changed: %+v", q)
					}
					return nil
				}
			}
			return fmt.Errorf("the other controller's entry is gone: %+v", r.Status.Parents)
		}
	}
	e.eventually("both parent statuses", 15*time.Second, check(metav1.ConditionTrue))
	lease, err := e.kube.CoordinationV1().Leases(e.ns).Get(e.ctx, "portico", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "replica-a" {
		t.Fatalf("lease holder %v", lease.Spec.HolderIdentity)
	}
	e.setBackend("missing")
	e.eventually("both parent statuses after an edit", 10*time.Second, check(metav1.ConditionFalse))
}

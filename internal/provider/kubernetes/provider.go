// Package kubernetes is the Kubernetes source: shared informers over Ingress and the
// Gateway API (plus the Services, EndpointSlices and Secrets they reference) feed the pure
// conversion (internal/kube/convert); every burst of events publishes a new Resources
// value, and one status writer writes the conversion's statuses back to the API server.
package kubernetes

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"

	"portico.dev/portico/internal/kube/convert"
	"portico.dev/portico/internal/resource"
)

// Defaults for Provider fields.
const (
	DefaultDebounce       = 100 * time.Millisecond
	DefaultLeaseNamespace = "default"
	DefaultLeaseName      = "portico-status-writer"
	// DiscoveryInterval is how often the provider looks for Gateway API CRDs that were
	// missing (or removed) at start; a change restarts the informers.
	DiscoveryInterval = 30 * time.Second
)

// Provider watches a cluster and publishes the Portico resources converted from it.
type Provider struct {
	Config  *rest.Config
	Options convert.Options
	// Debounce is how long events are collected before converting (default 100ms).
	Debounce time.Duration
	// Publish receives every new state (not called when a burst changed nothing).
	Publish func(*resource.Resources)
	Logger  *slog.Logger
	// LeaderElection: only the replica holding the Lease LeaseNamespace/LeaseName writes
	// statuses; every replica publishes resources. Identity defaults to hostname_pid.
	LeaderElection                      bool
	LeaseNamespace, LeaseName, Identity string

	kube kubernetes.Interface
	gw   gwclient.Interface
}

// gwKind is a Gateway API kind the provider can watch.
type gwKind struct {
	resource string // plural, as discovery lists it
	kind     string
}

var gwKinds = []gwKind{
	{"gatewayclasses", "GatewayClass"}, {"gateways", "Gateway"}, {"httproutes", "HTTPRoute"},
	{"grpcroutes", "GRPCRoute"}, {"tlsroutes", "TLSRoute"}, {"tcproutes", "TCPRoute"},
	{"udproutes", "UDPRoute"}, {"referencegrants", "ReferenceGrant"}, {"backendtlspolicies", "BackendTLSPolicy"},
}

// Run watches the cluster until ctx ends. It returns an error only when the clients
// cannot be built; API server outages are retried by the informers.
func (p *Provider) Run(ctx context.Context) error {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Config == nil {
		return fmt.Errorf("kubernetes source: no rest.Config")
	}
	var err error
	if p.kube, err = kubernetes.NewForConfig(p.Config); err != nil {
		return fmt.Errorf("kubernetes source: %w", err)
	}
	if p.gw, err = gwclient.NewForConfig(p.Config); err != nil {
		return fmt.Errorf("kubernetes source: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	w := newStatusWriter(p.kube, p.gw, p.controllerName(), p.Logger)
	var wg sync.WaitGroup
	wg.Go(func() { w.run(ctx) })
	if p.LeaderElection {
		wg.Go(func() { p.elect(ctx, w) })
	} else {
		w.setLeader(true)
	}
	defer wg.Wait()

	var lastMissing []string
	for ctx.Err() == nil {
		kinds, missing := p.discover(ctx)
		if !slices.Equal(missing, lastMissing) && len(missing) > 0 {
			p.Logger.Warn("kubernetes source: Gateway API kinds not served by the cluster (CRDs not installed); running without them",
				"kinds", missing)
		}
		lastMissing = missing
		p.watch(ctx, kinds, w)
	}
	return nil
}

func (p *Provider) controllerName() string {
	return cmp.Or(p.Options.ControllerName, convert.DefaultControllerName)
}

// discover returns the Gateway API kinds the cluster serves in gateway.networking.k8s.io/v1
// and the names of the others.
func (p *Provider) discover(ctx context.Context) (served map[string]bool, missing []string) {
	served = map[string]bool{}
	list, err := p.kube.Discovery().ServerResourcesForGroupVersion(gwv1.GroupVersion.String())
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		// Not "group not served": the kinds are left out until the next discovery poll.
		p.Logger.Warn("kubernetes source: discovering the Gateway API failed", "error", err)
	}
	if list != nil {
		for _, r := range list.APIResources {
			served[r.Name] = true
		}
	}
	for _, k := range gwKinds {
		if !served[k.resource] {
			missing = append(missing, k.kind)
		}
	}
	return served, missing
}

// informerSet holds the listers of one informer generation.
type informerSet struct {
	list []func(*convert.Objects)
}

// watch runs informers for the served kinds until ctx ends or discovery changes.
func (p *Provider) watch(ctx context.Context, served map[string]bool, w *statusWriter) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kf := informers.NewSharedInformerFactory(p.kube, 0)
	gf := gwinformers.NewSharedInformerFactory(p.gw, 0)
	trigger := make(chan struct{}, 1)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { notify(trigger) },
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(metav1.Object)
			c, ok2 := cur.(metav1.Object)
			if ok1 && ok2 && o.GetResourceVersion() == c.GetResourceVersion() {
				return // a resync
			}
			notify(trigger)
		},
		DeleteFunc: func(any) { notify(trigger) },
	}
	var set informerSet
	add := func(inf cache.SharedIndexInformer, fill func(*convert.Objects, []any)) {
		if _, err := inf.AddEventHandler(handler); err != nil {
			p.Logger.Error("kubernetes source: adding an event handler", "error", err)
		}
		set.list = append(set.list, func(o *convert.Objects) { fill(o, inf.GetStore().List()) })
	}
	add(kf.Networking().V1().IngressClasses().Informer(), fillInto(func(o *convert.Objects) *[]*networkingv1.IngressClass { return &o.IngressClasses }))
	add(kf.Networking().V1().Ingresses().Informer(), fillInto(func(o *convert.Objects) *[]*networkingv1.Ingress { return &o.Ingresses }))
	add(kf.Core().V1().Services().Informer(), fillInto(func(o *convert.Objects) *[]*corev1.Service { return &o.Services }))
	add(kf.Discovery().V1().EndpointSlices().Informer(), fillInto(func(o *convert.Objects) *[]*discoveryv1.EndpointSlice { return &o.EndpointSlices }))
	add(kf.Core().V1().Secrets().Informer(), fillInto(func(o *convert.Objects) *[]*corev1.Secret { return &o.Secrets }))
	g := gf.Gateway().V1()
	for _, k := range gwKinds {
		if !served[k.resource] {
			continue
		}
		switch k.kind {
		case "GatewayClass":
			add(g.GatewayClasses().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.GatewayClass { return &o.GatewayClasses }))
		case "Gateway":
			add(g.Gateways().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.Gateway { return &o.Gateways }))
		case "HTTPRoute":
			add(g.HTTPRoutes().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.HTTPRoute { return &o.HTTPRoutes }))
		case "GRPCRoute":
			add(g.GRPCRoutes().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.GRPCRoute { return &o.GRPCRoutes }))
		case "TLSRoute":
			add(g.TLSRoutes().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.TLSRoute { return &o.TLSRoutes }))
		case "TCPRoute":
			add(g.TCPRoutes().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.TCPRoute { return &o.TCPRoutes }))
		case "UDPRoute":
			add(g.UDPRoutes().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.UDPRoute { return &o.UDPRoutes }))
		case "ReferenceGrant":
			add(g.ReferenceGrants().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.ReferenceGrant { return &o.ReferenceGrants }))
		case "BackendTLSPolicy":
			add(g.BackendTLSPolicies().Informer(), fillInto(func(o *convert.Objects) *[]*gwv1.BackendTLSPolicy { return &o.BackendTLSPolicies }))
		}
	}
	kf.Start(ctx.Done())
	gf.Start(ctx.Done())
	defer kf.Shutdown()
	defer gf.Shutdown()
	for typ, ok := range kf.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			p.Logger.Warn("kubernetes source: cache did not sync", "type", typ)
		}
	}
	for typ, ok := range gf.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			p.Logger.Warn("kubernetes source: cache did not sync", "type", typ)
		}
	}
	if ctx.Err() != nil {
		return
	}
	p.Logger.Info("kubernetes source: caches synced")
	notify(trigger)

	debounce := cmp.Or(p.Debounce, DefaultDebounce)
	poll := time.NewTicker(DiscoveryInterval)
	defer poll.Stop()
	var last []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if cur, _ := p.discover(ctx); !sameServed(cur, served) {
				p.Logger.Info("kubernetes source: the served Gateway API kinds changed; restarting the informers")
				return
			}
			continue
		case <-trigger:
		}
		// Collect the rest of the burst.
		select {
		case <-ctx.Done():
			return
		case <-time.After(debounce):
		}
		select {
		case <-trigger:
		default:
		}
		last = p.sync(&set, w, last)
	}
}

// sync converts the cached objects, publishes the resources when they changed (last is
// the JSON of the previous publish) and hands the statuses to the writer.
func (p *Provider) sync(set *informerSet, w *statusWriter, last []byte) []byte {
	objs := &convert.Objects{}
	for _, fill := range set.list {
		fill(objs)
	}
	res := convert.Convert(objs, p.Options)
	js, err := json.Marshal(res.Resources)
	if err != nil || !slices.Equal(js, last) {
		if p.Publish != nil {
			p.Publish(res.Resources)
		}
		last = js
	}
	for key, warns := range res.Warnings {
		for _, msg := range warns {
			p.Logger.Debug("kubernetes source: ingress warning", "ingress", key.String(), "warning", msg)
		}
	}
	w.submit(&desired{objs: objs, res: res})
	return last
}

func sameServed(a, b map[string]bool) bool {
	for _, k := range gwKinds {
		if a[k.resource] != b[k.resource] {
			return false
		}
	}
	return true
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// fillInto returns a filler that appends the typed objects of a store listing to the
// slice field picks, sorted by namespace and name.
func fillInto[T metav1.Object](field func(*convert.Objects) *[]T) func(*convert.Objects, []any) {
	return func(o *convert.Objects, items []any) {
		out := make([]T, 0, len(items))
		for _, it := range items {
			if v, ok := it.(T); ok {
				out = append(out, v)
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].GetNamespace() != out[j].GetNamespace() {
				return out[i].GetNamespace() < out[j].GetNamespace()
			}
			return out[i].GetName() < out[j].GetName()
		})
		*field(o) = out
	}
}

// identity is the default leader-election identity.
func identity() string {
	h, _ := os.Hostname()
	return cmp.Or(h, "portico") + "_" + strconv.Itoa(os.Getpid())
}

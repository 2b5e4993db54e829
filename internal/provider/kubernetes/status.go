package kubernetes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"portico.dev/portico/internal/kube/convert"
)

// desired is one conversion: the objects it read (their stored statuses) and its result.
type desired struct {
	objs *convert.Objects
	res  *convert.Result
}

// conflictRetries bounds the re-reads after an update conflict.
const conflictRetries = 5

// statusWriter writes the latest conversion's statuses; it is the only writer, so
// bursts collapse to the newest state.
type statusWriter struct {
	kube       kubernetes.Interface
	gw         gwclient.Interface
	controller string
	logger     *slog.Logger
	now        func() time.Time

	mu     sync.Mutex
	latest *desired
	leader bool
	wake   chan struct{}
	// writes counts UpdateStatus calls that succeeded (tests).
	writes int
}

func newStatusWriter(kube kubernetes.Interface, gw gwclient.Interface, controller string, logger *slog.Logger) *statusWriter {
	return &statusWriter{kube: kube, gw: gw, controller: controller, logger: logger, now: time.Now, wake: make(chan struct{}, 1)}
}

func (w *statusWriter) submit(d *desired) {
	w.mu.Lock()
	w.latest = d
	w.mu.Unlock()
	notify(w.wake)
}

func (w *statusWriter) setLeader(b bool) {
	w.mu.Lock()
	w.leader = b
	w.mu.Unlock()
	notify(w.wake)
}

func (w *statusWriter) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-retry.C:
		}
		w.mu.Lock()
		d, leader := w.latest, w.leader
		w.mu.Unlock()
		if !leader || d == nil {
			continue
		}
		if err := w.writeAll(ctx, d); err != nil && ctx.Err() == nil {
			w.logger.Warn("kubernetes source: writing statuses failed; retrying", "error", err, "retryIn", backoff)
			retry.Reset(backoff)
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
	}
}

// writeAll writes every status of d that differs from the stored one.
func (w *statusWriter) writeAll(ctx context.Context, d *desired) error {
	now := metav1.NewTime(w.now().Truncate(time.Second))
	var errs []error
	gwc := w.gw.GatewayV1()
	for _, o := range d.objs.GatewayClasses {
		want, ok := d.res.GatewayClasses[o.Name]
		if !ok {
			continue
		}
		errs = append(errs, writeOne(ctx, w, o,
			func(ctx context.Context) (*gwv1.GatewayClass, error) {
				return gwc.GatewayClasses().Get(ctx, o.Name, metav1.GetOptions{})
			},
			func(obj *gwv1.GatewayClass) bool {
				merged := *want.DeepCopy()
				merged.Conditions = mergeConditions(obj.Status.Conditions, merged.Conditions, now)
				return setIfChanged(&obj.Status, merged)
			},
			func(ctx context.Context, obj *gwv1.GatewayClass) error {
				_, err := gwc.GatewayClasses().UpdateStatus(ctx, obj, metav1.UpdateOptions{})
				return err
			}))
	}
	for _, o := range d.objs.Gateways {
		want, ok := d.res.Gateways[types.NamespacedName{Namespace: o.Namespace, Name: o.Name}]
		if !ok {
			continue
		}
		errs = append(errs, writeOne(ctx, w, o,
			func(ctx context.Context) (*gwv1.Gateway, error) {
				return gwc.Gateways(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
			},
			func(obj *gwv1.Gateway) bool {
				return setIfChanged(&obj.Status, mergeGatewayStatus(obj.Status, want, now))
			},
			func(ctx context.Context, obj *gwv1.Gateway) error {
				_, err := gwc.Gateways(o.Namespace).UpdateStatus(ctx, obj, metav1.UpdateOptions{})
				return err
			}))
	}
	errs = append(errs,
		writeRoutes(ctx, w, d, "HTTPRoute", d.objs.HTTPRoutes, func(r *gwv1.HTTPRoute) *gwv1.RouteStatus { return &r.Status.RouteStatus },
			func(ctx context.Context, ns, name string) (*gwv1.HTTPRoute, error) {
				return gwc.HTTPRoutes(ns).Get(ctx, name, metav1.GetOptions{})
			},
			func(ctx context.Context, r *gwv1.HTTPRoute) error {
				_, err := gwc.HTTPRoutes(r.Namespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
				return err
			}, now),
		writeRoutes(ctx, w, d, "GRPCRoute", d.objs.GRPCRoutes, func(r *gwv1.GRPCRoute) *gwv1.RouteStatus { return &r.Status.RouteStatus },
			func(ctx context.Context, ns, name string) (*gwv1.GRPCRoute, error) {
				return gwc.GRPCRoutes(ns).Get(ctx, name, metav1.GetOptions{})
			},
			func(ctx context.Context, r *gwv1.GRPCRoute) error {
				_, err := gwc.GRPCRoutes(r.Namespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
				return err
			}, now),
		writeRoutes(ctx, w, d, "TLSRoute", d.objs.TLSRoutes, func(r *gwv1.TLSRoute) *gwv1.RouteStatus { return &r.Status.RouteStatus },
			func(ctx context.Context, ns, name string) (*gwv1.TLSRoute, error) {
				return gwc.TLSRoutes(ns).Get(ctx, name, metav1.GetOptions{})
			},
			func(ctx context.Context, r *gwv1.TLSRoute) error {
				_, err := gwc.TLSRoutes(r.Namespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
				return err
			}, now),
		writeRoutes(ctx, w, d, "TCPRoute", d.objs.TCPRoutes, func(r *gwv1.TCPRoute) *gwv1.RouteStatus { return &r.Status.RouteStatus },
			func(ctx context.Context, ns, name string) (*gwv1.TCPRoute, error) {
				return gwc.TCPRoutes(ns).Get(ctx, name, metav1.GetOptions{})
			},
			func(ctx context.Context, r *gwv1.TCPRoute) error {
				_, err := gwc.TCPRoutes(r.Namespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
				return err
			}, now),
		writeRoutes(ctx, w, d, "UDPRoute", d.objs.UDPRoutes, func(r *gwv1.UDPRoute) *gwv1.RouteStatus { return &r.Status.RouteStatus },
			func(ctx context.Context, ns, name string) (*gwv1.UDPRoute, error) {
				return gwc.UDPRoutes(ns).Get(ctx, name, metav1.GetOptions{})
			},
			func(ctx context.Context, r *gwv1.UDPRoute) error {
				_, err := gwc.UDPRoutes(r.Namespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
				return err
			}, now),
	)
	nw := w.kube.NetworkingV1()
	for _, o := range d.objs.Ingresses {
		want, ok := d.res.Ingresses[types.NamespacedName{Namespace: o.Namespace, Name: o.Name}]
		if !ok {
			continue
		}
		errs = append(errs, writeOne(ctx, w, o,
			func(ctx context.Context) (*networkingv1.Ingress, error) {
				return nw.Ingresses(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
			},
			func(obj *networkingv1.Ingress) bool {
				return setIfChanged(&obj.Status.LoadBalancer, *want.LoadBalancer.DeepCopy())
			},
			func(ctx context.Context, obj *networkingv1.Ingress) error {
				_, err := nw.Ingresses(o.Namespace).UpdateStatus(ctx, obj, metav1.UpdateOptions{})
				return err
			}))
	}
	return errors.Join(errs...)
}

// object is what writeOne needs of a typed object.
type object[T any] interface {
	metav1.Object
	DeepCopy() T
}

// writeOne applies the wanted status to a copy of the cached object and writes it when
// it changed; on a conflict it re-reads the object and tries again. A deleted object is
// not an error.
func writeOne[T object[T]](ctx context.Context, w *statusWriter, cached T,
	get func(context.Context) (T, error), apply func(T) bool, put func(context.Context, T) error) error {
	obj := cached.DeepCopy()
	for attempt := 0; ; attempt++ {
		if !apply(obj) {
			return nil
		}
		err := put(ctx, obj)
		if err == nil {
			w.mu.Lock()
			w.writes++
			w.mu.Unlock()
			return nil
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= conflictRetries {
			return fmt.Errorf("status of %s/%s: %w", cached.GetNamespace(), cached.GetName(), err)
		}
		if obj, err = get(ctx); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("status of %s/%s: %w", cached.GetNamespace(), cached.GetName(), err)
		}
	}
}

// writeRoutes writes the route statuses of one kind: every route is visited, so entries
// of ours on routes that no longer reference a Portico Gateway are removed too.
func writeRoutes[T object[T]](ctx context.Context, w *statusWriter, d *desired, kind string, routes []T,
	status func(T) *gwv1.RouteStatus, get func(ctx context.Context, ns, name string) (T, error),
	put func(context.Context, T) error, now metav1.Time) error {
	var errs []error
	for _, r := range routes {
		want := d.res.Routes[convert.RouteKey{Kind: kind, NamespacedName: types.NamespacedName{Namespace: r.GetNamespace(), Name: r.GetName()}}]
		errs = append(errs, writeOne(ctx, w, r,
			func(ctx context.Context) (T, error) { return get(ctx, r.GetNamespace(), r.GetName()) },
			func(obj T) bool {
				cur := status(obj)
				return setIfChanged(cur, mergeRouteStatus(*cur, want, w.controller, now))
			}, put))
	}
	return errors.Join(errs...)
}

// setIfChanged stores want in *cur unless they are semantically equal.
func setIfChanged[T any](cur *T, want T) bool {
	if equality.Semantic.DeepEqual(*cur, want) {
		return false
	}
	*cur = want
	return true
}

// mergeConditions returns want with each condition's LastTransitionTime taken from the
// stored condition of the same type when its status and reason did not change, else now.
func mergeConditions(stored, want []metav1.Condition, now metav1.Time) []metav1.Condition {
	if want == nil {
		return nil
	}
	out := make([]metav1.Condition, len(want))
	for i, c := range want {
		c.LastTransitionTime = now
		if s := meta.FindStatusCondition(stored, c.Type); s != nil && s.Status == c.Status && s.Reason == c.Reason && !s.LastTransitionTime.IsZero() {
			c.LastTransitionTime = s.LastTransitionTime
		}
		out[i] = c
	}
	return out
}

func mergeGatewayStatus(cur, want gwv1.GatewayStatus, now metav1.Time) gwv1.GatewayStatus {
	out := *want.DeepCopy()
	out.Conditions = mergeConditions(cur.Conditions, out.Conditions, now)
	for i := range out.Listeners {
		var stored []metav1.Condition
		for _, l := range cur.Listeners {
			if l.Name == out.Listeners[i].Name {
				stored = l.Conditions
				break
			}
		}
		out.Listeners[i].Conditions = mergeConditions(stored, out.Listeners[i].Conditions, now)
	}
	return out
}

// mergeRouteStatus keeps the parent statuses of other controllers (in their order) and
// replaces ours with want's.
func mergeRouteStatus(cur, want gwv1.RouteStatus, controller string, now metav1.Time) gwv1.RouteStatus {
	var out gwv1.RouteStatus
	for _, p := range cur.Parents {
		if string(p.ControllerName) != controller {
			out.Parents = append(out.Parents, *p.DeepCopy())
		}
	}
	for _, p := range want.Parents {
		p = *p.DeepCopy()
		var stored []metav1.Condition
		for _, c := range cur.Parents {
			if string(c.ControllerName) == controller && equality.Semantic.DeepEqual(c.ParentRef, p.ParentRef) {
				stored = c.Conditions
				break
			}
		}
		p.Conditions = mergeConditions(stored, p.Conditions, now)
		out.Parents = append(out.Parents, p)
	}
	return out
}

// elect runs leader election on a Lease until ctx ends; the writer writes only while
// this replica leads.
func (p *Provider) elect(ctx context.Context, w *statusWriter) {
	id := cmp.Or(p.Identity, identity())
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cmp.Or(p.LeaseNamespace, DefaultLeaseNamespace), Name: cmp.Or(p.LeaseName, DefaultLeaseName)},
		Client:     p.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			ReleaseOnCancel: true, Name: "portico-status-writer",
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					p.Logger.Info("kubernetes source: leading; writing statuses", "identity", id)
					w.setLeader(true)
				},
				OnStoppedLeading: func() {
					p.Logger.Info("kubernetes source: not leading; statuses are left to the leader", "identity", id)
					w.setLeader(false)
				},
			},
		})
		if err != nil {
			p.Logger.Error("kubernetes source: leader election", "error", err)
			return
		}
		le.Run(ctx)
	}
}

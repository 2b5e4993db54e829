package convert

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// gatewayGroup is the Gateway API's API group, the default group of parent references.
const gatewayGroup = gwv1.GroupName

// Route kinds, as RouteKey.Kind and supportedKinds name them.
const (
	kindHTTPRoute = "HTTPRoute"
	kindGRPCRoute = "GRPCRoute"
	kindTLSRoute  = "TLSRoute"
	kindTCPRoute  = "TCPRoute"
	kindUDPRoute  = "UDPRoute"
)

// supportedFeatures are the Gateway API features Portico implements, written to the
// GatewayClass status (sorted by name there).
var supportedFeatures = []features.FeatureName{
	features.SupportGateway,
	features.SupportReferenceGrant,
	features.SupportHTTPRoute,
	features.SupportHTTPRouteQueryParamMatching,
	features.SupportHTTPRouteMethodMatching,
	features.SupportHTTPRouteResponseHeaderModification,
	features.SupportHTTPRoutePortRedirect,
	features.SupportHTTPRouteSchemeRedirect,
	features.SupportHTTPRoutePathRedirect,
	features.SupportHTTPRouteHostRewrite,
	features.SupportHTTPRoutePathRewrite,
	features.SupportHTTPRouteRequestMirror,
	features.SupportHTTPRouteRequestPercentageMirror,
	features.SupportHTTPRouteRequestTimeout,
	features.SupportHTTPRouteParentRefPort,
	features.SupportHTTPRouteBackendProtocolH2C,
	features.SupportHTTPRoute303RedirectStatusCode,
	features.SupportHTTPRoute307RedirectStatusCode,
	features.SupportHTTPRoute308RedirectStatusCode,
	features.SupportGRPCRoute,
	features.SupportTLSRoute,
	features.SupportTCPRoute,
	features.SupportUDPRoute,
	features.SupportBackendTLSPolicy,
}

// gwConv is the state of one Gateway API conversion.
type gwConv struct {
	*converter
	classes  map[string]bool
	gateways map[types.NamespacedName]*gwState
}

// gatewayAPI converts the Gateway API objects of Portico's GatewayClasses.
func (c *converter) gatewayAPI() {
	g := &gwConv{converter: c, classes: map[string]bool{}, gateways: map[types.NamespacedName]*gwState{}}
	g.gatewayClasses()
	if len(g.classes) == 0 {
		return
	}
	g.convertGateways()
	g.httpRoutes()
	g.grpcRoutes()
	g.tlsRoutes()
	g.tcpRoutes()
	g.udpRoutes()
	g.gatewayStatuses()
}

// gatewayClasses accepts the classes whose controllerName is Portico's.
func (g *gwConv) gatewayClasses() {
	names := make([]gwv1.FeatureName, 0, len(supportedFeatures))
	for _, f := range supportedFeatures {
		names = append(names, gwv1.FeatureName(f))
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	for _, gc := range g.objs.GatewayClasses {
		if string(gc.Spec.ControllerName) != g.opts.ControllerName {
			continue
		}
		g.classes[gc.Name] = true
		st := gwv1.GatewayClassStatus{Conditions: []metav1.Condition{{
			Type: string(gwv1.GatewayClassConditionStatusAccepted), Status: metav1.ConditionTrue,
			Reason: string(gwv1.GatewayClassReasonAccepted), Message: "Handled by Portico",
			ObservedGeneration: gc.Generation,
		}}}
		for _, n := range names {
			st.SupportedFeatures = append(st.SupportedFeatures, gwv1.SupportedFeature{Name: n})
		}
		g.out.GatewayClasses[gc.Name] = st
	}
}

// gwSorted sorts objects by namespace, then name.
func gwSorted[T metav1.Object](objs []T) []T {
	out := append([]T(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].GetNamespace() != out[j].GetNamespace() {
			return out[i].GetNamespace() < out[j].GetNamespace()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out
}

func gwDeref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

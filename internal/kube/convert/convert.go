package convert

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"portico.dev/portico/internal/resource"
)

// Defaults for Options.
const (
	// DefaultControllerName is the GatewayClass controllerName Portico serves.
	DefaultControllerName = "portico.dev/gateway-controller"
	// DefaultIngressController is the IngressClass spec.controller Portico serves.
	DefaultIngressController = "portico.dev/ingress-controller"
)

// Options configure a conversion.
type Options struct {
	// ControllerName selects the GatewayClasses Portico serves (default DefaultControllerName).
	ControllerName string
	// IngressController selects the IngressClasses Portico serves (default DefaultIngressController).
	IngressController string
	// Addresses are the data plane's addresses, written to Gateway and Ingress statuses.
	Addresses []string
}

// RouteKey names a Gateway API route of any kind.
type RouteKey struct {
	Kind string // HTTPRoute, GRPCRoute, TLSRoute, TCPRoute or UDPRoute
	types.NamespacedName
}

// Result is what a conversion produces: Portico resources for the translator, and the
// status each Kubernetes object should have (the provider writes them back).
type Result struct {
	Resources      *resource.Resources
	GatewayClasses map[string]gwv1.GatewayClassStatus
	Gateways       map[types.NamespacedName]gwv1.GatewayStatus
	Routes         map[RouteKey]gwv1.RouteStatus
	Ingresses      map[types.NamespacedName]networkingv1.IngressStatus
	// Warnings explain, per Ingress, what was skipped or approximated (a missing TLS
	// Secret, an unsupported annotation value); the provider may turn them into events.
	Warnings map[types.NamespacedName][]string
}

// Convert turns objs into Portico resources and Kubernetes statuses.
func Convert(objs *Objects, opts Options) *Result {
	if opts.ControllerName == "" {
		opts.ControllerName = DefaultControllerName
	}
	if opts.IngressController == "" {
		opts.IngressController = DefaultIngressController
	}
	c := &converter{objs: objs, opts: opts, out: &Result{
		Resources:      &resource.Resources{},
		GatewayClasses: map[string]gwv1.GatewayClassStatus{},
		Gateways:       map[types.NamespacedName]gwv1.GatewayStatus{},
		Routes:         map[RouteKey]gwv1.RouteStatus{},
		Ingresses:      map[types.NamespacedName]networkingv1.IngressStatus{},
		Warnings:       map[types.NamespacedName][]string{},
	}}
	c.ingresses()
	c.gatewayAPI()
	return c.out
}

// converter holds one conversion's input, options and output.
type converter struct {
	objs *Objects
	opts Options
	out  *Result
	// backends holds the Upstreams and Certificates made from Services and Secrets
	// (services.go, secrets.go), shared by the Ingress and Gateway API conversions.
	backends backendState
}

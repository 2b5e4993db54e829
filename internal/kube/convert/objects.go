// Package convert turns Kubernetes objects — Ingress and IngressClass, the Gateway API,
// Services and EndpointSlices, Secrets — into Portico's one input model, and computes the
// status each Kubernetes object should show. It is pure: objects in, resources and
// statuses out, no client and no clock, tested with golden files like translation. The
// Kubernetes provider feeds it from informers and writes the statuses back.
package convert

import (
	"bytes"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Objects is every Kubernetes object the conversion reads.
type Objects struct {
	IngressClasses []*networkingv1.IngressClass
	Ingresses      []*networkingv1.Ingress
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Secrets        []*corev1.Secret

	GatewayClasses     []*gwv1.GatewayClass
	Gateways           []*gwv1.Gateway
	HTTPRoutes         []*gwv1.HTTPRoute
	GRPCRoutes         []*gwv1.GRPCRoute
	TLSRoutes          []*gwv1.TLSRoute
	TCPRoutes          []*gwv1.TCPRoute
	UDPRoutes          []*gwv1.UDPRoute
	ReferenceGrants    []*gwv1.ReferenceGrant
	BackendTLSPolicies []*gwv1.BackendTLSPolicy
}

// Scheme knows every type in Objects.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, networkingv1.AddToScheme, gwv1.Install} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// Add files obj under its type; it reports false for a type Objects does not hold.
func (o *Objects) Add(obj runtime.Object) bool {
	switch v := obj.(type) {
	case *networkingv1.IngressClass:
		o.IngressClasses = append(o.IngressClasses, v)
	case *networkingv1.Ingress:
		o.Ingresses = append(o.Ingresses, v)
	case *corev1.Service:
		o.Services = append(o.Services, v)
	case *discoveryv1.EndpointSlice:
		o.EndpointSlices = append(o.EndpointSlices, v)
	case *corev1.Secret:
		o.Secrets = append(o.Secrets, v)
	case *gwv1.GatewayClass:
		o.GatewayClasses = append(o.GatewayClasses, v)
	case *gwv1.Gateway:
		o.Gateways = append(o.Gateways, v)
	case *gwv1.HTTPRoute:
		o.HTTPRoutes = append(o.HTTPRoutes, v)
	case *gwv1.GRPCRoute:
		o.GRPCRoutes = append(o.GRPCRoutes, v)
	case *gwv1.TLSRoute:
		o.TLSRoutes = append(o.TLSRoutes, v)
	case *gwv1.TCPRoute:
		o.TCPRoutes = append(o.TCPRoutes, v)
	case *gwv1.UDPRoute:
		o.UDPRoutes = append(o.UDPRoutes, v)
	case *gwv1.ReferenceGrant:
		o.ReferenceGrants = append(o.ReferenceGrants, v)
	case *gwv1.BackendTLSPolicy:
		o.BackendTLSPolicies = append(o.BackendTLSPolicies, v)
	default:
		return false
	}
	return true
}

// Decode reads multi-document YAML (or JSON) of Kubernetes objects, as kubectl would
// apply them; errors name the file and the document.
func Decode(name string, data []byte) (*Objects, error) {
	dec := serializer.NewCodecFactory(Scheme).UniversalDeserializer()
	out := &Objects{}
	for i, doc := range splitDocuments(data) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		if !out.Add(obj) {
			return nil, fmt.Errorf("%s: document %d: %s is not a kind the conversion reads", name, i+1, gvk.Kind)
		}
	}
	return out, nil
}

// splitDocuments splits YAML on "---" lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(line, " \t\r\n") == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.Bytes())
}

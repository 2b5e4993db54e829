package v1alpha1

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"reflect"
	"sort"
	"testing"
	"time"
)

var meta = TypeMeta{APIVersion: APIVersion}

func ptr[T any](v T) *T { return &v }

// fields returns the sorted field paths of errs.
func fields(errs []FieldError) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, e.Field)
	}
	sort.Strings(out)
	return out
}

func check(t *testing.T, name string, errs []FieldError, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	sort.Strings(want)
	if got := fields(errs); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: fields %q, want %q (errors: %v)", name, got, want, errs)
	}
}

func gateway(ls ...Listener) *Gateway {
	m := meta
	m.Kind = KindGateway
	return &Gateway{TypeMeta: m, Metadata: ObjectMeta{Name: "default"}, Spec: GatewaySpec{Listeners: ls}}
}

func TestGatewayValidate(t *testing.T) {
	tls := &ListenerTLS{CertificateRefs: []string{"c"}}
	check(t, "valid", gateway(
		Listener{Name: "http", Port: 8080, Protocol: ProtocolHTTP, Hostname: "*.Example.com"},
		Listener{Name: "https", Port: 8443, Protocol: ProtocolHTTPS, TLS: tls, Address: "::1"},
		Listener{Name: "tls", Port: 9443, Protocol: ProtocolTLS},
		Listener{Name: "dns", Port: 53, Protocol: ProtocolUDP, Address: "127.0.0.1"},
	).Validate())
	check(t, "no listeners", gateway().Validate(), "spec.listeners")
	check(t, "listener fields", gateway(
		Listener{Name: "a", Port: 0, Protocol: "SCTP", Address: "example.com"},
		Listener{Name: "a", Port: 80, Protocol: ProtocolTCP, Hostname: "x.example.com", TLS: tls},
		Listener{Name: "b", Port: 443, Protocol: ProtocolHTTPS, Hostname: "foo.*.com"},
	).Validate(),
		"spec.listeners[0].port", "spec.listeners[0].protocol", "spec.listeners[0].address",
		"spec.listeners[1].name", "spec.listeners[1].hostname", "spec.listeners[1].tls",
		"spec.listeners[2].hostname", "spec.listeners[2].tls.certificateRefs")
	check(t, "same socket twice", gateway(
		Listener{Name: "a", Port: 80, Protocol: ProtocolHTTP, Hostname: "a.example.com"},
		Listener{Name: "b", Port: 80, Protocol: ProtocolHTTP, Hostname: "A.example.com"},
		Listener{Name: "c", Port: 80, Protocol: ProtocolHTTP},
	).Validate(), "spec.listeners[1]")

	g := gateway(Listener{Name: "http", Port: 80, Protocol: ProtocolHTTP})
	g.APIVersion, g.Kind, g.Metadata.Name = "v1", "Route", "-bad"
	g.Metadata.CreationTimestamp = "2025-01-01"
	check(t, "meta", g.Validate(), "apiVersion", "kind", "metadata.name", "metadata.creationTimestamp")
}

func route(spec RouteSpec) *Route {
	m := meta
	m.Kind = KindRoute
	return &Route{TypeMeta: m, Metadata: ObjectMeta{Name: "r", Namespace: "team-a", CreationTimestamp: "2025-01-01T00:00:00Z"}, Spec: spec}
}

func TestRouteValidate(t *testing.T) {
	backends := []Backend{{Upstream: "echo"}, {Upstream: "canary", Weight: ptr(int32(0))}}
	check(t, "valid", route(RouteSpec{
		Gateways: []string{"default", "internal"},
		Hosts:    []string{"a.example.com", "*.b.example.com"},
		Matches: []RouteMatch{
			{Path: &PathMatch{Value: "/api"}, Method: "GET"},
			{Path: &PathMatch{Type: PathRegex, Value: `/u/\d+`}, Headers: []ValueMatch{{Name: "X-A", Value: "1"}, {Name: "x-b", Type: MatchRegex, Value: "a|b"}}},
			{QueryParams: []ValueMatch{{Name: "q", Value: "1"}, {Name: "Q", Value: "2"}}},
		},
		Filters: []RouteFilter{
			{Type: FilterRequestHeaderModifier, RequestHeaderModifier: &HeaderModifier{Remove: []string{"x-secret"}}},
			{Type: FilterURLRewrite, URLRewrite: &URLRewrite{Path: &PathModifier{Type: ReplaceFullPath, ReplaceFullPath: "/x"}}},
		},
		Backends: backends,
		Plugins:  []PluginRef{{Name: "key-auth"}, {Name: "rate-limit", Config: map[string]any{"requests": 5}}},
		Timeouts: &RouteTimeouts{Request: "15s"},
		Retry:    &RouteRetry{Attempts: 3, On: []string{"connect-failure"}, PerTryTimeout: "2s"},
	}).Validate())

	check(t, "paths and methods", route(RouteSpec{Matches: []RouteMatch{
		{Path: &PathMatch{Type: PathExact, Value: "x"}, Method: "get"},
		{Path: &PathMatch{Type: PathRegex, Value: "(("}},
		{Path: &PathMatch{Type: "Prefix", Value: "/"}},
		{Headers: []ValueMatch{{Name: "a b", Value: "1"}, {Name: "X", Type: "Contains"}, {Name: "x"}}},
		{QueryParams: []ValueMatch{{Name: "a=b"}, {Name: "r", Type: MatchRegex, Value: "["}}},
	}}).Validate(),
		"spec.matches[0].path.value", "spec.matches[0].method", "spec.matches[1].path.value",
		"spec.matches[2].path.type", "spec.matches[3].headers[0].name", "spec.matches[3].headers[1].type",
		"spec.matches[3].headers[2].name", "spec.matches[4].queryParams[0].name", "spec.matches[4].queryParams[1].value")

	check(t, "references", route(RouteSpec{
		Gateways: []string{"a", "a"},
		Hosts:    []string{"a.example.com", "A.EXAMPLE.COM", "*", "1.2.3.4", "x.com:80"},
		Backends: []Backend{{Upstream: ""}, {Upstream: "e", Weight: ptr(int32(-5))}},
		Plugins:  []PluginRef{{Name: "p"}, {Name: "p"}},
		Timeouts: &RouteTimeouts{Request: "soon"},
		Retry:    &RouteRetry{Attempts: -1, On: []string{" "}, PerTryTimeout: "0s"},
	}).Validate(),
		"spec.gateways[1]", "spec.hosts[1]", "spec.hosts[2]", "spec.hosts[3]", "spec.hosts[4]",
		"spec.backends[0].upstream", "spec.backends[1].weight", "spec.plugins[1].name", "spec.timeouts.request",
		"spec.retry.attempts", "spec.retry.on[0]", "spec.retry.perTryTimeout")
}

func TestRouteFilterValidate(t *testing.T) {
	prefix := &PathModifier{Type: ReplacePrefixMatch, ReplacePrefixMatch: "/v2"}
	check(t, "payload must match type", route(RouteSpec{Filters: []RouteFilter{
		{Type: FilterURLRewrite},
		{Type: FilterRequestRedirect, RequestRedirect: &RequestRedirect{}, URLRewrite: &URLRewrite{Hostname: "a.b"}},
		{Type: "Mirror"},
	}}).Validate(),
		"spec.filters[0].urlRewrite", "spec.filters[1].urlRewrite", "spec.filters[1].type", "spec.filters[2].type")

	check(t, "ReplacePrefixMatch with only prefixes", route(RouteSpec{
		Matches: []RouteMatch{{}, {Path: &PathMatch{Value: "/a"}}, {Path: &PathMatch{Type: PathPrefix, Value: "/b"}}},
		Filters: []RouteFilter{{Type: FilterURLRewrite, URLRewrite: &URLRewrite{Path: prefix}}},
	}).Validate())
	check(t, "ReplacePrefixMatch with an exact match", route(RouteSpec{
		Matches: []RouteMatch{{Path: &PathMatch{Value: "/a"}}, {Path: &PathMatch{Type: PathExact, Value: "/b"}}},
		Filters: []RouteFilter{{Type: FilterRequestRedirect, RequestRedirect: &RequestRedirect{Path: prefix}}},
	}).Validate(), "spec.filters[0].requestRedirect.path.type")

	for _, code := range []int{0, 301, 302, 303, 307, 308} {
		check(t, "redirect status", route(RouteSpec{Filters: []RouteFilter{
			{Type: FilterRequestRedirect, RequestRedirect: &RequestRedirect{StatusCode: code, Scheme: "https", Port: 443}},
		}}).Validate())
	}
	check(t, "redirect fields", route(RouteSpec{Filters: []RouteFilter{
		{Type: FilterRequestRedirect, RequestRedirect: &RequestRedirect{StatusCode: 200, Scheme: "HTTP", Port: -1,
			Hostname: "*.x.com", Path: &PathModifier{Type: ReplaceFullPath}}},
	}}).Validate(),
		"spec.filters[0].requestRedirect.statusCode", "spec.filters[0].requestRedirect.scheme",
		"spec.filters[0].requestRedirect.port", "spec.filters[0].requestRedirect.hostname",
		"spec.filters[0].requestRedirect.path.replaceFullPath")
	check(t, "header modifiers", route(RouteSpec{Filters: []RouteFilter{
		{Type: FilterResponseHeaderModifier, ResponseHeaderModifier: &HeaderModifier{
			Set: []Header{{Name: "X-A", Value: "1"}, {Name: "x-a", Value: "2"}, {Name: "X-B", Value: "a\nb"}},
			Add: []Header{{Name: "X-A", Value: "3"}}}},
		{Type: FilterRequestHeaderModifier, RequestHeaderModifier: &HeaderModifier{}},
	}}).Validate(),
		"spec.filters[0].responseHeaderModifier.set[1].name", "spec.filters[0].responseHeaderModifier.set[2].value",
		"spec.filters[1].requestHeaderModifier")
	check(t, "rewrite and redirect together", route(RouteSpec{Filters: []RouteFilter{
		{Type: FilterURLRewrite, URLRewrite: &URLRewrite{Hostname: "a.example.com"}},
		{Type: FilterRequestRedirect, RequestRedirect: &RequestRedirect{}},
	}}).Validate(), "spec.filters[1].type")
}

func upstream(spec UpstreamSpec) *Upstream {
	m := meta
	m.Kind = KindUpstream
	return &Upstream{TypeMeta: m, Metadata: ObjectMeta{Name: "u"}, Spec: spec}
}

func TestUpstreamValidate(t *testing.T) {
	check(t, "valid", upstream(UpstreamSpec{
		Endpoints:    []Endpoint{{Address: "127.0.0.1:80"}, {Address: "[::1]:8080", Weight: ptr(int32(5))}, {Address: "svc.local:443"}},
		Protocol:     UpstreamH2,
		LoadBalancer: &LoadBalancer{Algorithm: LBEWMA},
		HealthCheck:  &HealthCheck{Active: &ActiveHealthCheck{HTTP: &HTTPHealthCheck{Path: "/healthz"}, Interval: "5s"}, Passive: &PassiveHealthCheck{ConsecutiveFailures: 5, EjectionTime: "30s"}},
		TLS:          &UpstreamTLS{SNI: "svc.local"},
	}).Validate())
	check(t, "invalid", upstream(UpstreamSpec{
		Endpoints:    []Endpoint{{Address: "127.0.0.1"}, {Address: "h:0"}, {Address: "h:1", Weight: ptr(int32(0))}, {Address: "h:1"}},
		Protocol:     "tcp",
		LoadBalancer: &LoadBalancer{Algorithm: "rr"},
		HealthCheck:  &HealthCheck{Active: &ActiveHealthCheck{Interval: "0s"}, Passive: &PassiveHealthCheck{EjectionTime: "x"}},
		TLS:          &UpstreamTLS{CACertificate: "garbage"},
	}).Validate(),
		"spec.endpoints[0].address", "spec.endpoints[1].address", "spec.endpoints[2].weight", "spec.endpoints[3].address",
		"spec.protocol", "spec.loadBalancer.algorithm", "spec.healthCheck.active", "spec.healthCheck.active.interval",
		"spec.healthCheck.passive.ejectionTime", "spec.tls", "spec.tls.caCertificate")
	check(t, "no endpoints", upstream(UpstreamSpec{}).Validate(), "spec.endpoints")
}

// selfSigned returns a PEM certificate for names and its PEM key.
func selfSigned(t *testing.T, names ...string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
}

func certificate(spec CertificateSpec) *Certificate {
	m := meta
	m.Kind = KindCertificate
	return &Certificate{TypeMeta: m, Metadata: ObjectMeta{Name: "c"}, Spec: spec}
}

func TestCertificateValidate(t *testing.T) {
	cert, key := selfSigned(t, "a.example.com")
	_, otherKey := selfSigned(t, "b.example.com")
	check(t, "inline", certificate(CertificateSpec{Cert: cert, Key: key, Hosts: []string{"*.example.com"}}).Validate())
	check(t, "files are not read here", certificate(CertificateSpec{CertFile: "a.crt", KeyFile: "a.key"}).Validate())
	check(t, "missing", certificate(CertificateSpec{}).Validate(), "spec.cert", "spec.key")
	check(t, "both", certificate(CertificateSpec{Cert: cert, CertFile: "a", Key: key, KeyFile: "b"}).Validate(),
		"spec.certFile", "spec.keyFile")
	check(t, "mismatched key", certificate(CertificateSpec{Cert: cert, Key: otherKey}).Validate(), "spec.cert")
	check(t, "bad inline cert with a key file", certificate(CertificateSpec{Cert: "junk", KeyFile: "k"}).Validate(), "spec.cert")

	leaf, err := ParseCertificatePEM(cert)
	if err != nil || leaf.DNSNames[0] != "a.example.com" {
		t.Fatalf("ParseCertificatePEM: %v %v", leaf, err)
	}
	if _, err := ParseCertificatePEM(key); err == nil {
		t.Fatal("a key is not a certificate")
	}
}

func TestStreamRouteValidate(t *testing.T) {
	m := meta
	m.Kind = KindStreamRoute
	sr := &StreamRoute{TypeMeta: m, Metadata: ObjectMeta{Name: "pg"},
		Spec: StreamRouteSpec{Listener: "tcp", SNI: []string{"*.db.example.com"}, Backends: []Backend{{Upstream: "pg"}}}}
	check(t, "valid", sr.Validate())
	sr.Spec = StreamRouteSpec{Gateways: []string{"G"}, SNI: []string{"*"}}
	check(t, "invalid", sr.Validate(), "spec.gateways[0]", "spec.listener", "spec.sni[0]", "spec.backends")
}

func TestFieldErrorString(t *testing.T) {
	if got := (FieldError{Field: "spec.x", Message: "bad"}).Error(); got != "spec.x: bad" {
		t.Fatal(got)
	}
	if got := (FieldError{Message: "bad"}).Error(); got != "bad" {
		t.Fatal(got)
	}
}

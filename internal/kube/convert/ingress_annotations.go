package convert

import (
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"portico.dev/portico/api/v1alpha1"
)

// Annotation prefixes: Portico's own, and ingress-nginx's spelling of the same names
// (Portico's wins when both are set). docs/kubernetes.md lists what is supported.
const (
	annPrefix      = "portico.dev/"
	annNginxPrefix = "nginx.ingress.kubernetes.io/"
)

// ingressAnnotations is what an Ingress's annotations ask for.
type ingressAnnotations struct {
	rewriteTarget     string
	sslRedirect       bool // default true: hosts with TLS redirect :80 to https
	forceSSLRedirect  bool
	protocol          string // Upstream protocol
	connectTimeout    time.Duration
	idleTimeout       time.Duration // the larger of proxy-read-timeout and proxy-send-timeout
	cors              map[string]any
	canaryWeight      *int32
	canaryTotal       int32
	canaryHeader      string
	canaryHeaderValue string
}

// annotation returns the value of portico.dev/<name>, or else nginx.ingress.kubernetes.io/<name>.
func annotation(ing *networkingv1.Ingress, name string) (string, bool) {
	if v, ok := ing.Annotations[annPrefix+name]; ok {
		return strings.TrimSpace(v), true
	}
	v, ok := ing.Annotations[annNginxPrefix+name]
	return strings.TrimSpace(v), ok
}

func annotationBool(ing *networkingv1.Ingress, name string) bool {
	v, _ := annotation(ing, name)
	return strings.EqualFold(v, "true")
}

// ingressAnnotations reads an Ingress's annotations; values it cannot use are warned
// about and ignored. Unknown annotations are ignored silently.
func (c *converter) ingressAnnotations(ing *networkingv1.Ingress) *ingressAnnotations {
	a := &ingressAnnotations{sslRedirect: true, canaryTotal: 100}
	if v, ok := annotation(ing, "rewrite-target"); ok {
		if strings.Contains(v, "$") || !strings.HasPrefix(v, "/") {
			c.warn(ing, "rewrite-target %q: only a plain path is supported (no $1-style captures): ignored", v)
		} else {
			a.rewriteTarget = v
		}
	}
	if v, ok := annotation(ing, "ssl-redirect"); ok {
		a.sslRedirect = !strings.EqualFold(v, "false")
	}
	a.forceSSLRedirect = annotationBool(ing, "force-ssl-redirect")
	if v, ok := annotation(ing, "backend-protocol"); ok {
		switch strings.ToUpper(v) {
		case "HTTP":
		case "HTTPS":
			a.protocol = v1alpha1.UpstreamHTTPS
		case "GRPC", "H2C":
			a.protocol = v1alpha1.UpstreamH2C
		case "GRPCS", "H2":
			a.protocol = v1alpha1.UpstreamH2
		default:
			c.warn(ing, "backend-protocol %q: one of HTTP, HTTPS, GRPC, GRPCS: using HTTP", v)
		}
	}
	timeout := func(name string) time.Duration {
		v, ok := annotation(ing, name)
		if !ok {
			return 0
		}
		d, ok := parseSeconds(v)
		if !ok {
			c.warn(ing, "%s %q: not a positive number of seconds or duration: ignored", name, v)
		}
		return d
	}
	a.connectTimeout = timeout("proxy-connect-timeout")
	a.idleTimeout = max(timeout("proxy-read-timeout"), timeout("proxy-send-timeout"))
	if annotationBool(ing, "enable-cors") {
		a.cors = corsConfig(c, ing)
	}
	if annotationBool(ing, "canary") {
		if v, ok := annotation(ing, "canary-weight-total"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 1000000 {
				a.canaryTotal = int32(n)
			} else {
				c.warn(ing, "canary-weight-total %q: not a number between 1 and 1000000: using 100", v)
			}
		}
		if v, ok := annotation(ing, "canary-weight"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				w := int32(min(n, int(a.canaryTotal)))
				a.canaryWeight = &w
			} else {
				c.warn(ing, "canary-weight %q: not a non-negative number: ignored", v)
			}
		}
		if v, ok := annotation(ing, "canary-by-header"); ok && v != "" {
			a.canaryHeader = v
			a.canaryHeaderValue = "always"
			if hv, ok := annotation(ing, "canary-by-header-value"); ok && hv != "" {
				a.canaryHeaderValue = hv
			}
		}
	}
	return a
}

// corsConfig builds the cors plugin's config from the cors-* annotations. Origins
// default to "*"; credentials are allowed only when cors-allow-credentials is "true"
// and the origins are listed ("*" with credentials is refused by the plugin).
func corsConfig(c *converter, ing *networkingv1.Ingress) map[string]any {
	cfg := map[string]any{}
	origins := []string{"*"}
	if v, ok := annotation(ing, "cors-allow-origin"); ok && v != "" {
		origins = splitList(v)
	}
	cfg["allowOrigins"] = origins
	if v, ok := annotation(ing, "cors-allow-methods"); ok && v != "" {
		ms := splitList(v)
		for i := range ms {
			ms[i] = strings.ToUpper(ms[i])
		}
		cfg["allowMethods"] = ms
	}
	if v, ok := annotation(ing, "cors-allow-headers"); ok && v != "" {
		cfg["allowHeaders"] = splitList(v)
	}
	if v, ok := annotation(ing, "cors-expose-headers"); ok && v != "" {
		cfg["exposeHeaders"] = splitList(v)
	}
	if annotationBool(ing, "cors-allow-credentials") {
		if contains(origins, "*") {
			c.warn(ing, "cors-allow-credentials with cors-allow-origin \"*\": credentials not allowed (list the origins)")
		} else {
			cfg["allowCredentials"] = true
		}
	}
	if v, ok := annotation(ing, "cors-max-age"); ok && v != "" {
		if d, ok := parseSeconds(v); ok {
			cfg["maxAge"] = d.String()
		} else {
			c.warn(ing, "cors-max-age %q: not a positive number of seconds: ignored", v)
		}
	}
	return cfg
}

// splitList splits a comma-separated annotation value, trimming spaces and empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// apply sets what the annotations ask of a route: the path rewrite, the idle timeout
// and the cors plugin. Backend protocol and connect timeout are on the Upstream.
func (a *ingressAnnotations) apply(r *v1alpha1.Route, m *v1alpha1.RouteMatch) {
	if a.rewriteTarget != "" {
		pm := &v1alpha1.PathModifier{Type: v1alpha1.ReplacePrefixMatch, ReplacePrefixMatch: a.rewriteTarget}
		if m != nil && m.Path != nil && m.Path.Type == v1alpha1.PathExact {
			pm = &v1alpha1.PathModifier{Type: v1alpha1.ReplaceFullPath, ReplaceFullPath: a.rewriteTarget}
		}
		r.Spec.Filters = append(r.Spec.Filters, v1alpha1.RouteFilter{Type: v1alpha1.FilterURLRewrite,
			URLRewrite: &v1alpha1.URLRewrite{Path: pm}})
	}
	if a.idleTimeout > 0 {
		r.Spec.Timeouts = &v1alpha1.RouteTimeouts{Idle: a.idleTimeout.String()}
	}
	if a.cors != nil {
		r.Spec.Plugins = append(r.Spec.Plugins, v1alpha1.PluginRef{Name: "cors", Config: a.cors})
	}
}

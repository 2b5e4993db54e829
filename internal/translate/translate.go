// Package translate turns resources into an IR snapshot and a status for every
// object. Translate is a pure function: no I/O, no clock, no globals, and equal input
// gives byte-for-byte equal output, so it is tested with golden files
// (testdata/*.in.yaml → *.out.yaml, refreshed with `go test ./internal/translate -update`).
//
// # Mistakes become statuses
//
// User mistakes never fail translation and are never logged: each object gets
// Accepted, ResolvedRefs (kinds with references) and Programmed conditions, and the
// parts of the configuration that are valid are still translated. What a source does
// with a False condition is its policy: the file provider rejects the whole
// configuration when Statuses.Errors is not empty (files are all-or-nothing, and the
// last good snapshot keeps serving); the Kubernetes provider will accept partially
// and write the conditions to each object's status.
//
// # Semantics
//
//   - References (route → gateway, route → upstream, gateway → certificate) resolve
//     in the referring object's namespace. An object that fails validation
//     (Accepted=False, Invalid) is left out and references to it do not resolve.
//     When two objects share kind, namespace and name, the first one is used and the
//     key is marked Duplicate.
//   - IR names are "namespace/name", or "name" without a namespace.
//   - Gateway listeners with the same address and port merge into one IR listener
//     ("address:port"). Different protocols on one socket conflict, and so do a
//     listener bound to every address and one bound to a specific address on the same
//     port (the operating system would refuse the second bind): every listener
//     involved gets ListenerConflict and is dropped. An HTTPS or TLS listener with a
//     certificate reference that does not resolve is dropped too.
//   - A Route attaches to the HTTP and HTTPS listeners of its gateways ("default" when
//     it names none). Its hosts are intersected with each listener's hostname using
//     Gateway API wildcard rules; each match of a route becomes one IR route in the
//     virtual host of each resulting hostname.
//   - Route precedence inside a virtual host follows the Gateway API: Exact paths,
//     then RegularExpression, then PathPrefix (the Gateway API leaves regex placement
//     to implementations; between exact and prefix keeps a specific regex above a
//     broad prefix); a longer path or pattern first; a method match before none; more
//     header matches, then more query matches, first; then the older
//     creationTimestamp (an object without one has not been stored yet and counts as
//     the newest); then "namespace/name"; then match index. A PathPrefix value's
//     trailing "/" is dropped ("/api/" behaves as "/api").
//   - Every accepted Upstream and Certificate appears in the snapshot, referenced or
//     not, so the data plane can keep pools warm and the snapshot mirrors the objects.
//   - A StreamRoute takes a TCP, TLS or UDP listener. A TCP or UDP listener serves one
//     StreamRoute, a TLS listener one per SNI name; the older route (then the name
//     first alphabetically) keeps a contested listener, the other gets RouteConflict.
//   - Traffic policy leaves translation with its defaults filled in (traffic.go), so
//     the IR states what runs: every upstream has a retry budget, every health check
//     and retry policy has its intervals, thresholds and backoff. A route's mirror
//     upstream resolves like a backend; when it does not, the route keeps serving
//     without the mirror and reports BackendNotFound.
//   - Plugins (plugins.go) merge per route and gateway from four levels, the most
//     specific winning per name: global Plugin objects (of the route's namespace),
//     the gateway's, the backends' upstreams' and the route's own; inline lists and
//     attached Plugin objects form one level. Configs are checked against the
//     registered plugin and kept as canonical JSON, sorted in plugin order. Invalid
//     Plugin objects keep the routes they target out (fail closed). Consumers
//     (consumer.go) carry hashed keys only.
package translate

import (
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

// Translate builds a validated, versioned snapshot and the statuses of every object
// in res. The snapshot always passes ir.Snapshot.Validate.
func Translate(res *resource.Resources) (*ir.Snapshot, Statuses) {
	if res == nil {
		res = &resource.Resources{}
	}
	t := &translator{
		res:         res,
		status:      make(statusBuilder, len(res.Routes)+len(res.Upstreams)+len(res.Gateways)+len(res.Plugins)+len(res.Consumers)+len(res.StreamRoutes)+len(res.Certificates)),
		gateways:    map[ref]*v1alpha1.Gateway{},
		upstreams:   map[ref]bool{},
		certs:       map[ref]bool{},
		gwListeners: map[ref][]*gwListener{},
		invalid:     map[resource.Key]bool{},
		plugins:     newPluginState(),
	}
	snap := &ir.Snapshot{}
	t.pluginObjects(res.Plugins)
	snap.Certificates = t.certificates(res.Certificates)
	snap.Upstreams = t.upstreamList(res.Upstreams)
	snap.Listeners = t.listeners(res.Gateways)
	t.routes(res.Routes)
	t.pluginStatuses()
	snap.Consumers = t.consumers(res.Consumers)
	snap.StreamRoutes = t.streamRoutes(res.StreamRoutes)
	for _, l := range t.built {
		snap.Listeners[l.index].VirtualHosts = l.virtualHosts()
	}
	snap.ComputeVersion()
	return snap, t.status.finish()
}

// translator holds the state of one translation.
type translator struct {
	res    *resource.Resources
	status statusBuilder
	// Accepted objects by namespace and name.
	gateways  map[ref]*v1alpha1.Gateway
	upstreams map[ref]bool
	certs     map[ref]bool
	// invalid marks keys that failed validation (for reference messages).
	invalid map[resource.Key]bool
	// gwListeners lists each accepted gateway's listeners, dropped ones included.
	gwListeners map[ref][]*gwListener
	// built are the IR listeners being filled with routes.
	built []*listenerBuild
	// plugins tracks plugin configuration by attachment target (plugins.go).
	plugins pluginState
}

// ref is a namespaced name.
type ref struct {
	namespace, name string
}

func refOf(m *v1alpha1.ObjectMeta) ref { return ref{m.Namespace, m.Name} }

// irName renders a namespaced name as IR names are written.
func (r ref) irName() string {
	if r.namespace == "" {
		return r.name
	}
	return r.namespace + "/" + r.name
}

func keyOf(kind string, m *v1alpha1.ObjectMeta) resource.Key {
	return resource.Key{Kind: kind, Namespace: m.Namespace, Name: m.Name}
}

// admit runs the checks every object goes through: duplicates and validation. It
// reports whether the object takes part in translation.
func (t *translator) admit(key resource.Key, seen map[resource.Key]int, errs []v1alpha1.FieldError) bool {
	st := t.status.get(key)
	seen[key]++
	if seen[key] > 1 {
		if seen[key] == 2 {
			t.status.reject(key, v1alpha1.ReasonDuplicate, "metadata.name: "+key.Kind+" "+strconv.Quote(key.Name)+
				" is defined more than once: the first definition is used")
		}
		return false
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		t.status.reject(key, v1alpha1.ReasonInvalid, strings.Join(msgs, messageSep))
		st.notProgrammed = "invalid: not part of the configuration"
		t.invalid[key] = true
		return false
	}
	return true
}

// missing explains why a reference does not resolve.
func (t *translator) missing(kind string, r ref) string {
	if t.invalid[resource.Key{Kind: kind, Namespace: r.namespace, Name: r.name}] {
		return kind + " " + strconv.Quote(r.name) + " is invalid"
	}
	if r.namespace != "" {
		return kind + " " + strconv.Quote(r.name) + " not found in namespace " + strconv.Quote(r.namespace)
	}
	return kind + " " + strconv.Quote(r.name) + " not found"
}

// backends resolves weighted upstream references: unknown upstreams are reported and
// dropped, a nil weight is 1 and a zero weight drops the backend.
func (t *translator) backends(key resource.Key, ns string, bs []v1alpha1.Backend) []ir.Backend {
	var out []ir.Backend
	for i, b := range bs {
		r := ref{ns, b.Upstream}
		if !t.upstreams[r] {
			t.status.unresolved(key, v1alpha1.ReasonBackendNotFound,
				"spec.backends["+strconv.Itoa(i)+"].upstream: "+t.missing(v1alpha1.KindUpstream, r))
			continue
		}
		w := int32(1)
		if b.Weight != nil {
			w = *b.Weight
		}
		if w == 0 {
			continue
		}
		out = append(out, ir.Backend{Upstream: r.irName(), Weight: w})
	}
	return out
}

// gatewayRefs returns the gateways an object names, or "default".
func gatewayRefs(names []string) (refs []string, defaulted bool) {
	if len(names) == 0 {
		return []string{v1alpha1.DefaultGateway}, true
	}
	return names, false
}

// gatewayField is the field a gateway reference problem points at.
func gatewayField(i int, defaulted bool) string {
	if defaulted {
		return "spec.gateways"
	}
	return "spec.gateways[" + strconv.Itoa(i) + "]"
}

// gatewayMissing explains an unresolved gateway reference.
func (t *translator) gatewayMissing(r ref, defaulted bool) string {
	msg := t.missing(v1alpha1.KindGateway, r)
	if defaulted {
		msg += " (an object without gateways attaches to \"default\")"
	}
	return msg
}

// created parses a creationTimestamp (validated earlier); ok is false when unset.
func created(m *v1alpha1.ObjectMeta) (time.Time, bool) {
	if m.CreationTimestamp == "" {
		return time.Time{}, false
	}
	ts, err := time.Parse(time.RFC3339, m.CreationTimestamp)
	return ts, err == nil
}

// olderFirst orders two objects by creationTimestamp (unset counts as newest), then
// by namespaced name: the tie-break shared by routes and stream routes.
func olderFirst(ta time.Time, hasA bool, na string, tb time.Time, hasB bool, nb string) int {
	switch {
	case hasA != hasB:
		if hasA {
			return -1
		}
		return 1
	case hasA && !ta.Equal(tb):
		if ta.Before(tb) {
			return -1
		}
		return 1
	}
	return strings.Compare(na, nb)
}

// listenerName is the IR name of a socket: "address:port".
func listenerName(address string, port int32) string {
	return net.JoinHostPort(address, strconv.Itoa(int(port)))
}

// sortedByName returns objects' indexes ordered by namespaced name, so that
// translation does not depend on input order (except which duplicate wins).
func sortedByName(n int, meta func(int) *v1alpha1.ObjectMeta) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ma, mb := meta(idx[a]), meta(idx[b])
		if ma.Namespace != mb.Namespace {
			return ma.Namespace < mb.Namespace
		}
		return ma.Name < mb.Name
	})
	return idx
}

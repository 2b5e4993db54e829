package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/resource"
)

// target is what a plugin configuration attaches to: a Gateway, Route or Upstream, or,
// with an empty kind, every route of a namespace (a global Plugin object).
type target struct {
	kind string
	ref  ref
}

func (tg target) String() string {
	if tg.kind == "" {
		if tg.ref.namespace == "" {
			return "every route"
		}
		return "every route in namespace " + strconv.Quote(tg.ref.namespace)
	}
	return tg.kind + " " + strconv.Quote(tg.ref.name)
}

// pluginEntry is one plugin configuration at one level, and where it was written.
type pluginEntry struct {
	spec ir.PluginSpec
	from string // "spec.plugins[0]" (inline) or `Plugin "name"`
}

// attachedPlugin is an accepted Plugin object waiting to be merged into its level.
type attachedPlugin struct {
	key        resource.Key
	target     target
	spec       ir.PluginSpec
	created    time.Time
	hasCreated bool
}

// pluginState is what translation tracks about plugin configuration.
type pluginState struct {
	inline   map[target][]pluginEntry
	attached map[target][]*attachedPlugin
	// broken lists, per target, the invalid Plugin objects meant for it: routes they
	// would apply to are left out rather than run without them (fail closed).
	broken map[target][]string
	levels map[target]map[string]pluginEntry
	// losers are Plugin objects not used because their level already configures the plugin.
	losers map[resource.Key]bool
	// objects are the accepted Plugin objects, in name order.
	objects []*attachedPlugin
	// routes are the Routes that passed validation (Plugin targets).
	routes map[ref]bool
	// shared caches noSharedPlugins: 0 unknown, 1 none, 2 some.
	shared int8
}

func newPluginState() pluginState {
	return pluginState{inline: map[target][]pluginEntry{}, attached: map[target][]*attachedPlugin{},
		broken: map[target][]string{}, levels: map[target]map[string]pluginEntry{},
		losers: map[resource.Key]bool{}, routes: map[ref]bool{}}
}

// pluginSpec checks one plugin configuration against the registered plugin and returns
// it with canonical JSON (sorted keys), so equal configs give equal snapshot versions.
// On failure field is the sub-field (".name" or ".config") and msg the problem.
func pluginSpec(name string, config map[string]any) (spec ir.PluginSpec, field, msg string) {
	if _, ok := plugin.Lookup(name); !ok {
		return spec, ".name", fmt.Sprintf("unknown plugin %q", name)
	}
	var raw json.RawMessage
	if len(config) > 0 {
		b, err := json.Marshal(config)
		if err != nil {
			return spec, ".config", cleanMessage(err.Error())
		}
		raw = b
	}
	if _, err := plugin.DecodeConfig(name, raw); err != nil {
		var fe *plugin.FieldError
		if errors.As(err, &fe) {
			return spec, ".config", cleanMessage(fe.Error())
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return spec, ".config", cleanMessage(fmt.Sprintf("%s: expected %s, got %s", te.Field, te.Type, te.Value))
		}
		return spec, ".config", cleanMessage(strings.TrimPrefix(err.Error(), "json: "))
	}
	return ir.PluginSpec{Name: name, Config: raw}, "", ""
}

// cleanMessage keeps a plugin's message from splitting a condition message in two.
func cleanMessage(s string) string { return strings.ReplaceAll(s, messageSep, ", ") }

// pluginRefs checks an inline plugin list. Unnamed and repeated entries are left to
// the object's validation, which reports them.
func pluginRefs(field string, refs []v1alpha1.PluginRef) ([]pluginEntry, []v1alpha1.FieldError) {
	var entries []pluginEntry
	var errs []v1alpha1.FieldError
	seen := map[string]bool{}
	for i, r := range refs {
		if r.Name == "" || seen[r.Name] {
			continue
		}
		seen[r.Name] = true
		p := field + "[" + strconv.Itoa(i) + "]"
		spec, sub, msg := pluginSpec(r.Name, r.Config)
		if msg != "" {
			errs = append(errs, v1alpha1.FieldError{Field: p + sub, Message: msg})
			continue
		}
		entries = append(entries, pluginEntry{spec: spec, from: p})
	}
	return entries, errs
}

// sortedSpecs returns specs in the one plugin order (plugin.Less).
func sortedSpecs(entries []pluginEntry) []ir.PluginSpec {
	var out []ir.PluginSpec
	for _, e := range entries {
		out = append(out, e.spec)
	}
	sort.Slice(out, func(i, j int) bool { return plugin.Less(out[i].Name, out[j].Name) })
	return out
}

// pluginObjects admits every Plugin object and files it under its target. An invalid
// one marks its target broken.
func (t *translator) pluginObjects(objs []*v1alpha1.Plugin) {
	seen := map[resource.Key]int{}
	for _, i := range sortedByName(len(objs), func(i int) *v1alpha1.ObjectMeta { return &objs[i].Metadata }) {
		p := objs[i]
		key := keyOf(v1alpha1.KindPlugin, &p.Metadata)
		errs := t.res.Validate(p)
		var spec ir.PluginSpec
		if p.Spec.Plugin != "" {
			var sub, msg string
			spec, sub, msg = pluginSpec(p.Spec.Plugin, p.Spec.Config)
			switch sub {
			case ".name":
				errs = append(errs, v1alpha1.FieldError{Field: "spec.plugin", Message: msg})
			case ".config":
				errs = append(errs, v1alpha1.FieldError{Field: "spec.config", Message: msg})
			}
		}
		tg, known := pluginTarget(p)
		first := seen[key] == 0
		if !t.admit(key, seen, errs) {
			if first && known && len(errs) > 0 {
				t.plugins.broken[tg] = append(t.plugins.broken[tg], "Plugin "+strconv.Quote(p.Metadata.Name))
			}
			continue
		}
		ts, has := created(&p.Metadata)
		a := &attachedPlugin{key: key, target: tg, spec: spec, created: ts, hasCreated: has}
		t.plugins.attached[tg] = append(t.plugins.attached[tg], a)
		t.plugins.objects = append(t.plugins.objects, a)
	}
	for _, list := range t.plugins.attached {
		sort.SliceStable(list, func(i, j int) bool {
			a, b := list[i], list[j]
			return olderFirst(a.created, a.hasCreated, a.key.Name, b.created, b.hasCreated, b.key.Name) < 0
		})
	}
}

// pluginTarget is where a Plugin object applies; known is false when attachTo is too
// malformed to tell.
func pluginTarget(p *v1alpha1.Plugin) (tg target, known bool) {
	ns := p.Metadata.Namespace
	a := p.Spec.AttachTo
	if a == nil {
		return target{ref: ref{namespace: ns}}, true
	}
	if a.Name == "" || !slices.Contains(v1alpha1.AttachKinds, a.Kind) {
		return target{}, false
	}
	return target{kind: a.Kind, ref: ref{ns, a.Name}}, true
}

// level merges one target's inline plugins and attached Plugin objects. The inline list
// wins over Plugin objects; among Plugin objects the older (then the first by name)
// wins, and the others are marked Duplicate and not used.
func (t *translator) level(tg target) map[string]pluginEntry {
	if l, ok := t.plugins.levels[tg]; ok {
		return l
	}
	l := map[string]pluginEntry{}
	for _, e := range t.plugins.inline[tg] {
		l[e.spec.Name] = e
	}
	for _, a := range t.plugins.attached[tg] {
		if prev, dup := l[a.spec.Name]; dup {
			t.status.reject(a.key, v1alpha1.ReasonDuplicate, fmt.Sprintf(
				"spec.plugin: %q is already configured for %s by %s: this Plugin is not used", a.spec.Name, tg, prev.from))
			t.status.get(a.key).notProgrammed = "duplicate: not used"
			t.plugins.losers[a.key] = true
			continue
		}
		l[a.spec.Name] = pluginEntry{spec: a.spec, from: "Plugin " + strconv.Quote(a.key.Name)}
	}
	t.plugins.levels[tg] = l
	return l
}

// noSharedPlugins reports whether no plugin is configured anywhere but inline on routes
// (no Plugin objects, none on gateways or upstreams): then a route without its own
// plugins has none, and the merge is skipped (most of the cost at 10k routes).
func (t *translator) noSharedPlugins() bool {
	if t.plugins.shared == 0 {
		t.plugins.shared = 1
		if len(t.plugins.attached) > 0 || len(t.plugins.broken) > 0 {
			t.plugins.shared = 2
		}
		for tg, entries := range t.plugins.inline {
			if tg.kind != v1alpha1.KindRoute && len(entries) > 0 {
				t.plugins.shared = 2
			}
		}
	}
	return t.plugins.shared == 1
}

// routePlugins merges a route's plugins for each of its gateways: global, then
// gateway, then upstream, then route level, the more specific replacing a plugin of the
// same name. It returns the problem that keeps the route out, if any.
func (t *translator) routePlugins(r *v1alpha1.Route) (map[ref][]ir.PluginSpec, *problem) {
	ns := r.Metadata.Namespace
	global := target{ref: ref{namespace: ns}}
	own := target{v1alpha1.KindRoute, refOf(&r.Metadata)}
	names, _ := gatewayRefs(r.Spec.Gateways)
	if len(t.plugins.inline[own]) == 0 && t.noSharedPlugins() {
		out := make(map[ref][]ir.PluginSpec, len(names))
		for _, n := range names {
			if gr := (ref{ns, n}); t.gateways[gr] != nil {
				out[gr] = nil
			}
		}
		return out, nil
	}

	// Invalid Plugin objects meant for this route: leave it out rather than run it
	// without them.
	check := []target{global, own}
	for _, b := range r.Spec.Backends {
		check = append(check, target{v1alpha1.KindUpstream, ref{ns, b.Upstream}})
	}
	for _, n := range names {
		check = append(check, target{v1alpha1.KindGateway, ref{ns, n}})
	}
	var broken []string
	for _, tg := range check {
		for _, b := range t.plugins.broken[tg] {
			broken = append(broken, fmt.Sprintf("%s (for %s) is invalid", b, tg))
		}
	}
	if len(broken) > 0 {
		slices.Sort(broken)
		broken = slices.Compact(broken)
		return nil, &problem{v1alpha1.ReasonInvalid, "plugins: " + strings.Join(broken, ", ") +
			": the route is left out rather than run without it"}
	}

	routeLevel := t.level(own)
	ups, conflicts := t.upstreamLevel(ns, r.Spec.Backends, routeLevel)
	if len(conflicts) > 0 {
		return nil, &problem{v1alpha1.ReasonPluginConflict, strings.Join(conflicts, messageSep)}
	}
	out := map[ref][]ir.PluginSpec{}
	for _, n := range names {
		gr := ref{ns, n}
		if t.gateways[gr] == nil {
			continue
		}
		merged := map[string]pluginEntry{}
		for _, lvl := range []map[string]pluginEntry{t.level(global), t.level(target{v1alpha1.KindGateway, gr}), ups, routeLevel} {
			for name, e := range lvl {
				merged[name] = e
			}
		}
		entries := make([]pluginEntry, 0, len(merged))
		for _, e := range merged {
			entries = append(entries, e)
		}
		out[gr] = sortedSpecs(entries)
	}
	return out, nil
}

// upstreamLevel is the union of the plugins of every upstream the route's backends
// name (resolved ones, weight 0 included; not the mirror). Two upstreams configuring
// one plugin differently conflict unless the route configures that plugin itself.
func (t *translator) upstreamLevel(ns string, backends []v1alpha1.Backend, routeLevel map[string]pluginEntry) (map[string]pluginEntry, []string) {
	out := map[string]pluginEntry{}
	owner := map[string]string{}
	seen := map[ref]bool{}
	var conflicts []string
	for _, b := range backends {
		ur := ref{ns, b.Upstream}
		if !t.upstreams[ur] || seen[ur] {
			continue
		}
		seen[ur] = true
		lvl := t.level(target{v1alpha1.KindUpstream, ur})
		names := make([]string, 0, len(lvl))
		for n := range lvl {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			e := lvl[n]
			prev, ok := out[n]
			switch {
			case !ok:
				out[n], owner[n] = e, b.Upstream
			case !bytes.Equal(prev.spec.Config, e.spec.Config):
				if _, chosen := routeLevel[n]; !chosen {
					conflicts = append(conflicts, fmt.Sprintf("spec.backends: Upstreams %q and %q configure plugin %q differently (configure it on the route to choose)",
						owner[n], b.Upstream, n))
				}
			}
		}
	}
	return out, conflicts
}

// pluginStatuses resolves each accepted Plugin object's target, once routes are known.
func (t *translator) pluginStatuses() {
	for _, a := range t.plugins.objects {
		t.level(a.target) // settles duplicates even where no route uses the target
		st := t.status.get(a.key)
		st.hasRefs = true
		ok := true
		switch a.target.kind {
		case v1alpha1.KindGateway:
			ok = t.gateways[a.target.ref] != nil
		case v1alpha1.KindUpstream:
			ok = t.upstreams[a.target.ref]
		case v1alpha1.KindRoute:
			ok = t.plugins.routes[a.target.ref]
		}
		if !ok {
			t.status.unresolved(a.key, v1alpha1.ReasonTargetNotFound, "spec.attachTo: "+t.missing(a.target.kind, a.target.ref))
			st.notProgrammed = "its target does not exist"
			continue
		}
		if !t.plugins.losers[a.key] {
			st.programmed = true
		}
	}
}

// Package controlplane holds the control plane's live state: the newest Resources from
// the store, their translation and statuses, and the snapshot each kind of data plane
// receives. Sources call Update; the distribution server asks Snapshot per data plane;
// the admin API reads Statuses.
package controlplane

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/translate"
)

// GatewayLabel is the data-plane label naming the gateways it serves ("a" or "a+b");
// a data plane without it serves every gateway.
const GatewayLabel = "gateway"

// ControlPlane is safe for concurrent use.
type ControlPlane struct {
	logger *slog.Logger

	mu         sync.Mutex
	res        *resource.Resources
	revision   int64
	generation uint64
	full       *ir.Snapshot
	statuses   translate.Statuses
	// selected caches the snapshot of each gateway selection for the current generation.
	selected map[string]*ir.Snapshot
	watchers []func()
	updated  time.Time
	// advanced is closed (and replaced) by every Update: ResourcesAt waits on it.
	advanced chan struct{}
}

// Nack is a data plane's refusal of a version, shown on the status of the Gateways it serves.
type Nack struct {
	DataPlane string
	Gateways  []string
	Version   string
	Error     string
	Time      time.Time
}

// New returns an empty control plane.
func New(logger *slog.Logger) *ControlPlane {
	if logger == nil {
		logger = slog.Default()
	}
	return &ControlPlane{logger: logger, selected: map[string]*ir.Snapshot{}, advanced: make(chan struct{})}
}

// OnChange registers f, called (without locks held) after every Update that changed the
// configuration. The distribution server's Notify and the in-process data plane use it.
func (c *ControlPlane) OnChange(f func()) {
	c.mu.Lock()
	c.watchers = append(c.watchers, f)
	c.mu.Unlock()
}

// Update translates a new state of every source. A snapshot that fails validation (a
// translation bug) is not published: data planes keep the last good one.
func (c *ControlPlane) Update(res *resource.Resources, revision int64) {
	snap, statuses := translate.Translate(res)
	if err := snap.Validate(); err != nil {
		c.logger.Error("translated configuration is invalid; data planes keep the last good one", "revision", revision, "error", err)
		return
	}
	c.mu.Lock()
	changed := c.full == nil || c.full.Version != snap.Version
	c.res, c.revision, c.full, c.statuses = res, revision, snap, statuses
	c.updated = time.Now()
	close(c.advanced)
	c.advanced = make(chan struct{})
	if changed {
		c.generation++
		c.selected = map[string]*ir.Snapshot{"": snap}
	}
	watchers := c.watchers
	c.mu.Unlock()
	if changed {
		for _, f := range watchers {
			f()
		}
	}
}

// Revision is the store revision of the current state (0 before the first Update).
func (c *ControlPlane) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revision
}

// ResourcesAt returns the current Resources once they reflect at least store revision
// rev (read-your-writes for the admin API, without reading every object from the
// database), or false when that does not happen before ctx ends. The objects are
// shared: read-only.
func (c *ControlPlane) ResourcesAt(ctx context.Context, rev int64) (*resource.Resources, bool) {
	for {
		c.mu.Lock()
		res, cur, advanced := c.res, c.revision, c.advanced
		c.mu.Unlock()
		if res != nil && cur >= rev {
			return res, true
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// Ready reports whether a first state has been translated.
func (c *ControlPlane) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.full != nil
}

// Snapshot returns the configuration for a data plane with these labels: the Gateways
// its "gateway" label names and what they reference, or everything without the label.
// It returns nil before the first Update.
func (c *ControlPlane) Snapshot(labels map[string]string) (*ir.Snapshot, error) {
	key := selectionKey(labels)
	c.mu.Lock()
	if s, ok := c.selected[key]; ok {
		c.mu.Unlock()
		return s, nil
	}
	res, gen, full := c.res, c.generation, c.full
	c.mu.Unlock()
	if res == nil {
		return nil, nil
	}
	sel := res.Select(strings.Split(key, "+"))
	snap := full
	// A selection of every Gateway is served the full snapshot: one translation less
	// per write (the full one may also carry upstreams no route uses, which is harmless).
	if len(sel.Gateways) != len(res.Gateways) {
		snap, _ = translate.Translate(sel)
		if err := snap.Validate(); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	if c.generation == gen {
		c.selected[key] = snap
	}
	c.mu.Unlock()
	return snap, nil
}

// selectionKey normalizes the gateway label: sorted, deduplicated, "+"-joined.
func selectionKey(labels map[string]string) string {
	v := strings.TrimSpace(labels[GatewayLabel])
	if v == "" {
		return ""
	}
	var names []string
	for _, n := range strings.FieldsFunc(v, func(r rune) bool { return r == '+' || r == ',' }) {
		names = append(names, strings.TrimSpace(n))
	}
	sort.Strings(names)
	out := names[:0]
	for i, n := range names {
		if n != "" && (i == 0 || n != names[i-1]) {
			out = append(out, n)
		}
	}
	return strings.Join(out, "+")
}

// NackFor builds the Nack of a data plane with these labels.
func NackFor(dataPlane string, labels map[string]string, version, errText string, at time.Time) Nack {
	var gws []string
	if k := selectionKey(labels); k != "" {
		gws = strings.Split(k, "+")
	}
	return Nack{DataPlane: dataPlane, Gateways: gws, Version: version, Error: errText, Time: at}
}

// Statuses returns the translation statuses plus, on each Gateway a data plane serves, a
// Programmed=False condition for each of the standing nacks given.
func (c *ControlPlane) Statuses(nacks []Nack) translate.Statuses {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(translate.Statuses, len(c.statuses))
	for k, v := range c.statuses {
		out[k] = v
	}
	if c.res == nil {
		return out
	}
	for _, n := range nacks {
		for _, g := range c.res.Select(n.Gateways).Gateways {
			k := resource.Key{Kind: v1alpha1.KindGateway, Namespace: g.Metadata.Namespace, Name: g.Metadata.Name}
			msg := "data plane " + n.DataPlane + " rejected version " + n.Version + ": " + n.Error
			out[k] = withRejection(out[k], msg)
		}
	}
	return out
}

// ReasonRejected: a data plane refused the configuration (its error is the message).
const ReasonRejected = "RejectedByDataPlane"

// withRejection returns conds with Programmed set to False for msg; a second rejection
// (another data plane) is added to the same condition's message.
func withRejection(conds []v1alpha1.Condition, msg string) []v1alpha1.Condition {
	out := append([]v1alpha1.Condition(nil), conds...)
	for i, c := range out {
		if c.Type != v1alpha1.ConditionProgrammed {
			continue
		}
		if c.Reason == ReasonRejected {
			msg = c.Message + "; " + msg
		}
		out[i] = v1alpha1.Condition{Type: v1alpha1.ConditionProgrammed, Status: "False", Reason: ReasonRejected, Message: msg}
		return out
	}
	return append(out, v1alpha1.Condition{Type: v1alpha1.ConditionProgrammed, Status: "False", Reason: ReasonRejected, Message: msg})
}

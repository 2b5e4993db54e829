// Package pipeline wires the runners of one process: sources publish Resources, the
// translator turns them into a validated IR snapshot, and the data plane applies it.
// Each hop is a bus topic that ignores unchanged values; a rejected input never replaces
// the last good snapshot.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/bus"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/translate"
)

// Applier is the data plane: it swaps in a snapshot or refuses it whole.
type Applier interface {
	Apply(*ir.Snapshot) error
}

// Hooks observe outcomes (metrics); each may be nil.
type Hooks struct {
	Applied  func(version string)
	Rejected func(stage string, err error)
}

// Pipeline carries resources to the data plane.
type Pipeline struct {
	// Strict rejects the whole input when any object has an error (the file source's
	// policy, like `nginx -t`); otherwise broken objects are left out and the rest served.
	Strict bool
	Logger *slog.Logger
	Hooks  Hooks

	Resources *bus.Topic[*resource.Resources]
	Snapshots *bus.Topic[*ir.Snapshot]

	mu    sync.Mutex
	state ReloadState
}

// ReloadState is what /debug/reload shows.
type ReloadState struct {
	ActiveVersion string    `json:"activeVersion,omitempty"`
	AppliedAt     time.Time `json:"appliedAt,omitempty"`
	Applied       int       `json:"applied"`
	Rejected      int       `json:"rejected"`
	LastError     string    `json:"lastError,omitempty"`
	LastErrorAt   time.Time `json:"lastErrorAt,omitempty"`
}

// New returns a pipeline with fresh topics.
func New(strict bool, logger *slog.Logger, hooks Hooks) *Pipeline {
	if logger == nil {
		logger = slog.Default()
	}
	return &Pipeline{
		Strict: strict, Logger: logger, Hooks: hooks,
		Resources: bus.New(func(a, b *resource.Resources) bool { return reflect.DeepEqual(a, b) }),
		Snapshots: bus.New(func(a, b *ir.Snapshot) bool { return a.Version == b.Version }),
	}
}

// State returns a copy of the reload state.
func (p *Pipeline) State() ReloadState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Reject records a failure at a stage (a source, translation, or the data plane).
func (p *Pipeline) Reject(stage string, err error) {
	p.mu.Lock()
	p.state.Rejected++
	p.state.LastError = err.Error()
	p.state.LastErrorAt = time.Now()
	active := p.state.ActiveVersion
	p.mu.Unlock()
	if active == "" {
		p.Logger.Error("configuration rejected; nothing is served until it is fixed", "stage", stage, "error", err.Error())
	} else {
		p.Logger.Error("configuration rejected; the last good configuration keeps serving", "stage", stage, "active", active, "error", err.Error())
	}
	if p.Hooks.Rejected != nil {
		p.Hooks.Rejected(stage, err)
	}
}

// RunTranslator translates every new Resources value until ctx ends.
func (p *Pipeline) RunTranslator(ctx context.Context) {
	p.Resources.Subscribe(ctx, func(res *resource.Resources) {
		snap, err := p.TranslateOnce(res)
		if err != nil {
			p.Reject("translate", err)
			return
		}
		p.Snapshots.Publish(snap)
	})
}

// TranslateOnce translates res and applies the pipeline's policy to the statuses.
func (p *Pipeline) TranslateOnce(res *resource.Resources) (*ir.Snapshot, error) {
	snap, statuses := translate.Translate(res)
	if msgs := statusErrors(res, statuses); len(msgs) > 0 {
		if p.Strict {
			return nil, fmt.Errorf("%d problem(s):\n  %s", len(msgs), strings.Join(msgs, "\n  "))
		}
		for _, m := range msgs {
			p.Logger.Warn("object not served", "problem", m)
		}
	}
	if err := snap.Validate(); err != nil {
		return nil, err
	}
	return snap, nil
}

// RunDataPlane applies every new snapshot to dp until ctx ends.
func (p *Pipeline) RunDataPlane(ctx context.Context, dp Applier) {
	p.Snapshots.Subscribe(ctx, func(snap *ir.Snapshot) { _ = p.Apply(dp, snap) })
}

// Apply hands snap to dp and records the outcome in the reload state; sources that
// receive ready snapshots (a control plane's stream) call it directly.
func (p *Pipeline) Apply(dp Applier, snap *ir.Snapshot) error {
	if err := dp.Apply(snap); err != nil {
		p.Reject("apply", err)
		return err
	}
	p.mu.Lock()
	p.state.ActiveVersion = snap.Version
	p.state.AppliedAt = time.Now()
	p.state.Applied++
	p.mu.Unlock()
	if p.Hooks.Applied != nil {
		p.Hooks.Applied(snap.Version)
	}
	return nil
}

// statusErrors lists every False condition, prefixed with where the object came from.
func statusErrors(res *resource.Resources, statuses translate.Statuses) []string {
	var out []string
	for key, conds := range statuses {
		where := key.String()
		if o, ok := res.Origins[key]; ok {
			where = fmt.Sprintf("%s: document %d (%s)", o.File, o.Document, key)
		}
		for _, c := range conds {
			if c.Status == "False" && c.Type != v1alpha1.ConditionProgrammed {
				out = append(out, fmt.Sprintf("%s: %s: %s", where, c.Reason, c.Message))
			}
		}
	}
	sort.Strings(out)
	return out
}

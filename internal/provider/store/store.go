// Package store is the database source: it keeps an in-memory mirror of the objects in
// the store, follows the store's change feed, and publishes a new Resources value after
// each burst of committed writes. Several control-plane replicas over one PostgreSQL
// each run one, so they stay in step.
package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
	db "portico.dev/portico/internal/store"
)

// fullReadAbove is the burst size above which the mirror re-reads every object instead
// of fetching the changed ones one by one (one query instead of thousands).
const fullReadAbove = 256

// Provider mirrors a store and publishes it.
type Provider struct {
	Store db.Store
	// Publish receives every new state and the store revision it reflects.
	Publish func(res *resource.Resources, revision int64)
	// Reject, when set, receives errors reading the store (the last state keeps serving).
	Reject func(error)
	// RetryMin and RetryMax bound the wait before re-reading after an error.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger

	objects  map[resource.Key]mirrored
	revision int64
}

// mirrored is a decoded object and its validation result (objects are never changed
// after decoding, so both are computed once per write, not per publish).
type mirrored struct {
	obj  v1alpha1.Object
	errs []v1alpha1.FieldError
}

// Run publishes the store's content, then every change, until ctx ends.
func (p *Provider) Run(ctx context.Context) error {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	backoff := cmp.Or(p.RetryMin, 100*time.Millisecond)
	for ctx.Err() == nil {
		err := p.follow(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			if p.Reject != nil {
				p.Reject(err)
			}
			p.Logger.Warn("store source: reading the database failed; the last state keeps serving", "error", err, "retryIn", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, cmp.Or(p.RetryMax, 5*time.Second))
			continue
		}
		backoff = cmp.Or(p.RetryMin, 100*time.Millisecond)
	}
	return nil
}

// follow subscribes, reads everything, and applies changes until the feed ends. It
// returns nil when the feed closes without error (a lagging subscriber is resynchronized).
func (p *Provider) follow(ctx context.Context) error {
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := p.Store.Changes(subCtx)
	if err != nil {
		return err
	}
	if err := p.readAll(ctx); err != nil {
		return err
	}
	p.publish()
	for {
		var first db.Change
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case first, ok = <-changes:
		}
		if !ok {
			return nil
		}
		burst := drain(changes, first)
		if err := p.applyBurst(ctx, burst); err != nil {
			return err
		}
		p.publish()
	}
}

// drain returns first and every change already waiting.
func drain(ch <-chan db.Change, first db.Change) []db.Change {
	burst := []db.Change{first}
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				return burst
			}
			burst = append(burst, c)
		default:
			return burst
		}
	}
}

func (p *Provider) applyBurst(ctx context.Context, burst []db.Change) error {
	if len(burst) > fullReadAbove {
		return p.readAll(ctx)
	}
	seen := map[resource.Key]bool{}
	for _, c := range burst {
		p.revision = max(p.revision, c.Revision)
		if seen[c.Key] {
			continue
		}
		seen[c.Key] = true
		o, err := p.Store.Get(ctx, c.Key.Kind, c.Key.Namespace, c.Key.Name)
		if errors.Is(err, db.ErrNotFound) {
			delete(p.objects, c.Key)
			continue
		}
		if err != nil {
			return err
		}
		if err := p.put(o); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) readAll(ctx context.Context) error {
	rev, err := p.Store.Revision(ctx)
	if err != nil {
		return err
	}
	objs, err := p.Store.List(ctx, "", db.AllNamespaces)
	if err != nil {
		return err
	}
	p.objects = make(map[resource.Key]mirrored, len(objs))
	p.revision = rev
	for _, o := range objs {
		p.revision = max(p.revision, o.Revision)
		if err := p.put(o); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) put(o *db.Object) error {
	v := v1alpha1.NewObject(o.Key.Kind)
	if v == nil {
		return fmt.Errorf("store source: %s: unknown kind", o.Key)
	}
	if err := json.Unmarshal(o.JSON, v); err != nil {
		return fmt.Errorf("store source: decoding %s: %w", o.Key, err)
	}
	p.objects[o.Key] = mirrored{obj: v, errs: v.Validate()}
	return nil
}

// publish hands a fresh Resources, ordered by kind then namespace and name, to Publish.
func (p *Provider) publish() {
	keys := make([]resource.Key, 0, len(p.objects))
	for k := range p.objects {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	res := &resource.Resources{Validated: make(map[v1alpha1.Object][]v1alpha1.FieldError, len(keys))}
	for _, k := range keys {
		m := p.objects[k]
		res.Add(m.obj)
		res.Validated[m.obj] = m.errs
	}
	if p.Publish != nil {
		p.Publish(res, p.revision)
	}
}

var kindOrder = func() map[string]int {
	m := map[string]int{}
	for i, k := range v1alpha1.Kinds {
		m[k] = i
	}
	return m
}()

func compareKeys(a, b resource.Key) int {
	return cmp.Or(cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

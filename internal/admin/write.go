package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
	"portico.dev/portico/internal/translate"
)

// Actions reported for each object of a write.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
	ActionDeleted   = "deleted"
)

// change is one object a write creates, replaces or deletes.
type change struct {
	key resource.Key
	// obj is the new content; nil for a delete.
	obj v1alpha1.Object
	// expectedRV, when set, must equal the stored resourceVersion.
	expectedRV string
	// cur is the stored object (nil when absent); action is filled by plan.
	cur    v1alpha1.Object
	action string
	// stored is the object as written (after execute; cur for unchanged objects).
	stored v1alpha1.Object
}

// Item is the outcome for one object of a write.
type Item struct {
	Kind            string `json:"kind"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name"`
	Action          string `json:"action"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// WriteResult is the body of an apply, and of a dry-run PUT or DELETE.
type WriteResult struct {
	DryRun bool   `json:"dryRun,omitempty"`
	Items  []Item `json:"items"`
	// Statuses maps "Kind/name" (or "Kind/namespace/name") to the conditions the
	// change would give the objects it touches; dry runs only.
	Statuses map[string][]v1alpha1.Condition `json:"statuses,omitempty"`
	// Object is the object as it would be stored (dry-run PUT) or deleted (dry-run DELETE).
	Object v1alpha1.Object `json:"object,omitempty"`
}

// plan checks a write against the stored objects: roles and scopes (of the new and the
// stored content), resourceVersions, and references in the store as it would be after
// the change. It fills each change's cur and action and returns the resulting objects.
func (s *server) plan(rq *request, changes []*change) (*resource.Resources, error) {
	if err := rq.p.needRole("change objects", RoleAdmin, RoleEditor); err != nil {
		return nil, err
	}
	before, err := s.storedResources(rq)
	if err != nil {
		return nil, err
	}
	index := map[resource.Key]v1alpha1.Object{}
	for _, o := range before.Objects() {
		index[resource.KeyOf(o)] = o
	}
	byKey := map[resource.Key]*change{}
	keys := make([]resource.Key, len(changes))
	rq.objects = make([]string, len(changes))
	for i, c := range changes {
		keys[i] = c.key
		byKey[c.key] = c
		rq.objects[i] = c.key.String()
	}
	after := func(k resource.Key) v1alpha1.Object {
		if c, ok := byKey[k]; ok {
			return c.obj
		}
		return index[k]
	}
	for _, c := range changes {
		c.cur = index[c.key]
		if err := s.checkChange(rq, c, after); err != nil {
			return nil, err
		}
	}
	res := &resource.Resources{}
	for _, o := range before.Objects() {
		k := resource.KeyOf(o)
		if c, ok := byKey[k]; ok {
			if c.obj != nil {
				res.Add(c.obj)
			}
			continue
		}
		res.Add(o)
	}
	for _, c := range changes {
		if c.cur == nil && c.obj != nil {
			res.Add(c.obj)
		}
	}
	if err := referenceErrors(resource.CheckReferences(res, keys), byKey); err != nil {
		return nil, err
	}
	return res, nil
}

// storedResources returns every stored object: from Options.Current when it catches up
// with the store's revision within a moment (one cheap query instead of reading and
// decoding every object), else from the store.
func (s *server) storedResources(rq *request) (*resource.Resources, error) {
	if s.opts.Current != nil {
		rev, err := s.opts.Store.Revision(rq.ctx)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(rq.ctx, currentWait)
		res, ok := s.opts.Current(ctx, rev)
		cancel()
		if ok {
			return res, nil
		}
	}
	return s.opts.Store.Resources(rq.ctx)
}

// currentWait bounds the wait for Options.Current to reach the store's revision.
const currentWait = 2 * time.Second

// checkChange checks one change's scope and resourceVersion and sets its action.
func (s *server) checkChange(rq *request, c *change, after func(resource.Key) v1alpha1.Object) error {
	if c.obj != nil {
		if err := rq.p.scopeError("write", c.obj, after); err != nil {
			return err
		}
	}
	if c.cur != nil {
		if err := rq.p.scopeError("change", c.cur, after); err != nil {
			return err
		}
	}
	var curRV string
	if c.cur != nil {
		curRV = curMeta(c.cur).ResourceVersion
	}
	if c.expectedRV != "" && c.expectedRV != curRV {
		e := errorf(CodeConflict, "%s: resourceVersion %s is stale (stored: %s); read the object again and retry", c.key, c.expectedRV, cmpOr(curRV, "none, the object does not exist"))
		e.Field, e.Object = "metadata.resourceVersion", c.key.String()
		return e
	}
	switch {
	case c.obj == nil && c.cur == nil:
		e := errorf(CodeNotFound, "%s not found", c.key)
		e.Object = c.key.String()
		return e
	case c.obj == nil:
		c.action = ActionDeleted
	case c.cur == nil:
		c.action = ActionCreated
	case canonical(c.obj) == canonical(c.cur):
		c.action = ActionUnchanged
	default:
		c.action = ActionUpdated
		// The stored creation time keeps its route precedence in a dry run.
		curMeta(c.obj).CreationTimestamp = curMeta(c.cur).CreationTimestamp
	}
	return nil
}

func curMeta(o v1alpha1.Object) *v1alpha1.ObjectMeta { m, _ := meta(o); return m }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// referenceErrors turns reference problems into an error: a changed object naming a
// missing one is invalid (400); an object still referencing a deleted one is a
// conflict (409) naming the referrer.
func referenceErrors(problems []resource.Problem, changed map[resource.Key]*change) error {
	var invalid, conflicts []resource.Problem
	for _, p := range problems {
		k := resource.Key{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}
		if c, ok := changed[k]; ok && c.obj != nil {
			invalid = append(invalid, p)
		} else {
			conflicts = append(conflicts, p)
		}
	}
	if len(invalid) > 0 {
		return fromProblems(CodeInvalid, fmt.Sprintf("%d references to missing objects", len(invalid)), invalid)
	}
	if len(conflicts) > 0 {
		var names []string
		for _, p := range conflicts {
			names = append(names, fmt.Sprintf("%s (%s)", resource.Key{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}, p.Field))
		}
		var deleted []string
		for k, c := range changed {
			if c.obj == nil {
				deleted = append(deleted, k.String())
			}
		}
		slices.Sort(deleted)
		e := fromProblems(CodeConflict, "", conflicts)
		e.Message = "cannot delete " + strings.Join(deleted, ", ") + ": still referenced by " + strings.Join(names, ", ") +
			"; change or delete the referrers first"
		return e
	}
	return nil
}

// execute writes the planned changes in one transaction (unchanged objects are
// skipped), or for a dry run translates the planned objects and reports statuses.
func (s *server) execute(rq *request, changes []*change, after *resource.Resources, dry bool) (*WriteResult, error) {
	out := &WriteResult{DryRun: dry}
	if dry {
		rq.note = "dryRun"
		_, st := translate.Translate(after)
		out.Statuses = map[string][]v1alpha1.Condition{}
		for _, c := range changes {
			if conds, ok := st[c.key]; ok && c.obj != nil {
				out.Statuses[c.key.String()] = conds
			}
			c.stored = c.obj
			if c.obj == nil {
				c.stored = c.cur
			}
		}
		out.Items = items(changes, true)
		return out, nil
	}
	var ops []store.Op
	var idx []int
	for i, c := range changes {
		switch c.action {
		case ActionUnchanged:
			c.stored = c.cur
		case ActionDeleted:
			ops = append(ops, store.Op{Delete: true, Key: c.key, ExpectedResourceVersion: c.expectedRV})
			idx = append(idx, i)
			c.stored = c.cur
		default:
			data, err := storable(c.obj)
			if err != nil {
				return nil, err
			}
			ops = append(ops, store.Op{Object: data, ExpectedResourceVersion: c.expectedRV})
			idx = append(idx, i)
		}
	}
	if len(ops) == 0 {
		rq.note = "unchanged"
		out.Items = items(changes, false)
		return out, nil
	}
	written, err := s.opts.Store.Apply(store.WithActor(rq.ctx, rq.p.Name), ops)
	if err != nil {
		return nil, err
	}
	for j, o := range written {
		if o == nil {
			continue
		}
		rq.revision = max(rq.revision, o.Revision)
		obj, err := decodeStored(o)
		if err != nil {
			return nil, err
		}
		changes[idx[j]].stored = obj
	}
	if rq.revision == 0 { // deletes only
		rq.revision, _ = s.opts.Store.Revision(rq.ctx)
	}
	out.Items = items(changes, false)
	return out, nil
}

// storable is the JSON the store receives: no resourceVersion, no status.
func storable(obj v1alpha1.Object) (json.RawMessage, error) {
	c := clone(obj)
	m, st := meta(c)
	m.ResourceVersion = ""
	*st = v1alpha1.Status{}
	return json.Marshal(c)
}

// items reports each change: a write's new resourceVersion, or for a dry run the
// stored one (empty for objects that do not exist yet).
func items(changes []*change, dry bool) []Item {
	out := make([]Item, len(changes))
	for i, c := range changes {
		out[i] = Item{Kind: c.key.Kind, Namespace: c.key.Namespace, Name: c.key.Name, Action: c.action}
		src := c.stored
		if dry || c.action == ActionDeleted {
			src = c.cur
		}
		if src != nil {
			out[i].ResourceVersion = curMeta(src).ResourceVersion
		}
	}
	return out
}

// writeStatus is 201 when the single change created its object, else 200.
func writeStatus(c *change, dry bool) int {
	if c.action == ActionCreated && !dry {
		return http.StatusCreated
	}
	return http.StatusOK
}

package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
)

// List is the body of GET /api/v1/{kind}.
type List struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   ListMetadata `json:"metadata"`
	Items      []any        `json:"items"`
}

// ListMetadata carries the store revision a list was read at.
type ListMetadata struct {
	ResourceVersion string `json:"resourceVersion"`
}

func (s *server) key(rq *request) resource.Key {
	return resource.Key{Kind: rq.kind, Namespace: rq.namespace, Name: rq.name}
}

// list answers GET /api/v1/{kind}: the caller sees the objects in its scope only.
func (s *server) list(rq *request) (*response, error) {
	if rq.namespace != store.AllNamespaces && !rq.p.namespaceAllowed(rq.namespace) {
		return nil, errorf(CodeForbidden, "token %q may not read namespace %q: outside its namespaces %v", rq.p.Name, rq.namespace, rq.p.Namespaces)
	}
	rev, err := s.opts.Store.Revision(rq.ctx)
	if err != nil {
		return nil, err
	}
	objs, err := s.opts.Store.List(rq.ctx, rq.kind, rq.namespace)
	if err != nil {
		return nil, err
	}
	lookup := s.lookup(rq)
	out := &List{APIVersion: v1alpha1.APIVersion, Kind: "List", Metadata: ListMetadata{ResourceVersion: strconv.FormatInt(rev, 10)}, Items: []any{}}
	for _, o := range objs {
		obj, err := decodeStored(o)
		if err != nil {
			return nil, err
		}
		if rq.p.scopeError("read", obj, lookup) != nil {
			continue
		}
		out.Items = append(out.Items, s.render(rq, obj))
	}
	return ok(out)
}

// lookup finds stored objects for scope checks (a Plugin attached to a Route).
func (s *server) lookup(rq *request) func(resource.Key) v1alpha1.Object {
	return func(k resource.Key) v1alpha1.Object {
		o, err := s.opts.Store.Get(rq.ctx, k.Kind, k.Namespace, k.Name)
		if err != nil {
			return nil
		}
		obj, err := decodeStored(o)
		if err != nil {
			return nil
		}
		return obj
	}
}

// fetch reads the object named by the path and checks the caller may read it.
func (s *server) fetch(rq *request) (v1alpha1.Object, error) {
	k := s.key(rq)
	rq.objects = []string{k.String()}
	if err := s.pathScope(rq, "read"); err != nil {
		return nil, err
	}
	o, err := s.opts.Store.Get(rq.ctx, k.Kind, k.Namespace, k.Name)
	if errors.Is(err, store.ErrNotFound) {
		e := errorf(CodeNotFound, "%s not found", k)
		e.Object = k.String()
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	obj, err := decodeStored(o)
	if err != nil {
		return nil, err
	}
	if e := rq.p.scopeError("read", obj, s.lookup(rq)); e != nil {
		return nil, e
	}
	return obj, nil
}

func (s *server) get(rq *request) (*response, error) {
	obj, err := s.fetch(rq)
	if err != nil {
		return nil, err
	}
	return ok(s.render(rq, obj))
}

// put creates or replaces one object.
func (s *server) put(rq *request) (*response, error) {
	if err := rq.p.needRole("change objects", RoleAdmin, RoleEditor); err != nil {
		return nil, err
	}
	dry, err := dryRun(rq)
	if err != nil {
		return nil, err
	}
	rq.objects = []string{s.key(rq).String()}
	if err := s.pathScope(rq, "write"); err != nil {
		return nil, err
	}
	data, name, err := readBody(rq)
	if err != nil {
		return nil, err
	}
	obj, err := parseOne(rq, name, data)
	if err != nil {
		return nil, err
	}
	rq.objects = nil
	c := &change{key: resource.KeyOf(obj), obj: obj, expectedRV: curMeta(obj).ResourceVersion}
	return s.single(rq, c, dry)
}

// delete removes one object (refused while others reference it).
func (s *server) delete(rq *request) (*response, error) {
	if err := rq.p.needRole("change objects", RoleAdmin, RoleEditor); err != nil {
		return nil, err
	}
	dry, err := dryRun(rq)
	if err != nil {
		return nil, err
	}
	if err := s.pathScope(rq, "write"); err != nil {
		return nil, err
	}
	c := &change{key: s.key(rq), expectedRV: rq.URL.Query().Get("resourceVersion")}
	return s.single(rq, c, dry)
}

// pathScope refuses, before reading the store or any body, a request the path alone
// puts out of scope: another namespace, or (for Gateways) another gateway.
func (s *server) pathScope(rq *request, verb string) error {
	k := s.key(rq)
	var e *Error
	switch {
	case !rq.p.namespaceAllowed(k.Namespace):
		e = errorf(CodeForbidden, "token %q may not %s %s: namespace %q is outside its namespaces %v", rq.p.Name, verb, k, k.Namespace, rq.p.Namespaces)
	case k.Kind == v1alpha1.KindGateway && !rq.p.gatewayAllowed(k.Name):
		e = errorf(CodeForbidden, "token %q may not %s %s: gateway %q is outside its gateways %v", rq.p.Name, verb, k, k.Name, rq.p.Gateways)
	default:
		return nil
	}
	e.Object = k.String()
	return e
}

// single plans and runs a one-object write. The body is the object as stored (or
// deleted), or for a dry run a WriteResult with the object and statuses.
func (s *server) single(rq *request, c *change, dry bool) (*response, error) {
	after, err := s.plan(rq, []*change{c})
	if err != nil {
		return nil, err
	}
	res, err := s.execute(rq, []*change{c}, after, dry)
	if err != nil {
		return nil, err
	}
	if dry {
		res.Object = s.render(rq, c.stored)
		return ok(res)
	}
	if c.action == ActionUnchanged {
		rq.note = "unchanged"
	}
	return &response{status: writeStatus(c, dry), body: s.render(rq, c.stored)}, nil
}

// apply writes every object of the body in one transaction.
func (s *server) apply(rq *request) (*response, error) {
	if err := rq.p.needRole("change objects", RoleAdmin, RoleEditor); err != nil {
		return nil, err
	}
	dry, err := dryRun(rq)
	if err != nil {
		return nil, err
	}
	data, name, err := readBody(rq)
	if err != nil {
		return nil, err
	}
	objs, err := parseObjects(name, data, true)
	if err != nil {
		return nil, err
	}
	changes := make([]*change, len(objs))
	for i, o := range objs {
		changes[i] = &change{key: resource.KeyOf(o), obj: o, expectedRV: curMeta(o).ResourceVersion}
	}
	after, err := s.plan(rq, changes)
	if err != nil {
		return nil, err
	}
	res, err := s.execute(rq, changes, after, dry)
	if err != nil {
		return nil, err
	}
	return ok(res)
}

// HistoryEntry is one revision in GET /api/v1/{kind}/{name}/history.
type HistoryEntry struct {
	Revision  int64           `json:"revision"`
	Operation string          `json:"operation"`
	Actor     string          `json:"actor"`
	Time      time.Time       `json:"time"`
	Object    v1alpha1.Object `json:"object,omitempty"`
}

// history lists an object's revisions, oldest first.
func (s *server) history(rq *request) (*response, error) {
	k := s.key(rq)
	rq.objects = []string{k.String()}
	revs, objs, err := s.revisions(rq)
	if err != nil {
		return nil, err
	}
	out := make([]HistoryEntry, len(revs))
	for i, r := range revs {
		out[i] = HistoryEntry{Revision: r.Revision, Operation: r.Operation, Actor: r.Actor, Time: r.Time}
		if objs[i] != nil {
			out[i].Object = s.render(rq, objs[i])
		}
	}
	return ok(map[string]any{"items": out})
}

// revisions reads an object's history and checks the caller may read it (by its
// most recent content).
func (s *server) revisions(rq *request) ([]store.Revision, []v1alpha1.Object, error) {
	k := s.key(rq)
	if err := s.pathScope(rq, "read"); err != nil {
		return nil, nil, err
	}
	revs, err := s.opts.Store.History(rq.ctx, k.Kind, k.Namespace, k.Name)
	if errors.Is(err, store.ErrNotFound) {
		e := errorf(CodeNotFound, "%s has no history", k)
		e.Object = k.String()
		return nil, nil, e
	}
	if err != nil {
		return nil, nil, err
	}
	objs := make([]v1alpha1.Object, len(revs))
	var latest v1alpha1.Object
	for i, r := range revs {
		if r.Object == nil {
			continue
		}
		if objs[i], err = decodeStored(&store.Object{Key: k, JSON: r.Object}); err != nil {
			return nil, nil, err
		}
		latest = objs[i]
	}
	if latest != nil {
		if e := rq.p.scopeError("read", latest, s.lookup(rq)); e != nil {
			return nil, nil, e
		}
	}
	return revs, objs, nil
}

// rollback restores the content an object had at a revision, as a new revision.
func (s *server) rollback(rq *request) (*response, error) {
	if err := rq.p.needRole("change objects", RoleAdmin, RoleEditor); err != nil {
		return nil, err
	}
	k := s.key(rq)
	rq.objects = []string{k.String()}
	data, _, err := readBody(rq)
	if err != nil {
		return nil, err
	}
	var body struct {
		Revision json.Number `json:"revision"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, fieldError("revision", fmt.Sprintf(`want {"revision": N}: %v`, err))
	}
	rev, err := body.Revision.Int64()
	if err != nil || rev <= 0 {
		return nil, fieldError("revision", "required: a positive revision number from the object's history")
	}
	revs, objs, err := s.revisions(rq)
	if err != nil {
		return nil, err
	}
	var target v1alpha1.Object
	found := false
	for i, r := range revs {
		if r.Revision == rev {
			found, target = true, objs[i]
		}
	}
	switch {
	case !found:
		e := errorf(CodeNotFound, "%s has no revision %d", k, rev)
		e.Field, e.Object = "revision", k.String()
		return nil, e
	case target == nil:
		return nil, fieldError("revision", fmt.Sprintf("revision %d of %s is a delete: nothing to restore", rev, k))
	}
	// The restored content goes through the same checks as any write.
	if _, err := s.plan(rq, []*change{{key: k, obj: clone(target)}}); err != nil {
		return nil, err
	}
	o, err := s.opts.Store.Rollback(store.WithActor(rq.ctx, rq.p.Name), k.Kind, k.Namespace, k.Name, rev, rq.p.Name)
	if err != nil {
		return nil, err
	}
	rq.revision = o.Revision
	obj, err := decodeStored(o)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusOK, body: s.render(rq, obj)}, nil
}

func fieldError(field, msg string) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: field + ": " + msg}
}

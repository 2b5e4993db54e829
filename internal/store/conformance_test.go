package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

// openMigrated opens dsn, migrates it and closes it at cleanup.
func openMigrated(t testing.TB, dsn string) Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := Migrate(ctx, s); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func keyOf(kind, namespace, name string) resource.Key {
	return resource.Key{Kind: kind, Namespace: namespace, Name: name}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func route(name string, hosts ...string) json.RawMessage {
	return mustJSON(&v1alpha1.Route{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindRoute},
		Metadata: v1alpha1.ObjectMeta{Name: name},
		Spec:     v1alpha1.RouteSpec{Hosts: hosts},
	})
}

// collect reads n changes or fails after a timeout.
func collect(t testing.TB, ch <-chan Change, n int) []Change {
	t.Helper()
	var out []Change
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatalf("feed closed after %v", out)
			}
			out = append(out, c)
		case <-timeout:
			t.Fatalf("got %d of %d changes: %+v", len(out), n, out)
		}
	}
	return out
}

// runConformance is the suite every driver passes; newDB returns a fresh database's DSN.
func runConformance(t *testing.T, newDB func(testing.TB) string) {
	ctx := context.Background()
	t.Run("CRUD", func(t *testing.T) {
		s := openMigrated(t, newDB(t))
		o, err := s.Put(ctx, route("r1", "a.example"), "")
		if err != nil {
			t.Fatal(err)
		}
		var r v1alpha1.Route
		if err := json.Unmarshal(o.JSON, &r); err != nil {
			t.Fatal(err)
		}
		if r.Metadata.ResourceVersion != o.ResourceVersion || o.ResourceVersion == "" || r.Metadata.CreationTimestamp == "" {
			t.Fatalf("metadata not filled: %+v (object RV %s)", r.Metadata, o.ResourceVersion)
		}
		got, err := s.Get(ctx, "Route", "", "r1")
		if err != nil || got.ResourceVersion != o.ResourceVersion || !strings.Contains(string(got.JSON), "a.example") {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		o2, err := s.Put(ctx, route("r1", "b.example"), o.ResourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		if o2.Revision <= o.Revision {
			t.Errorf("revision did not increase: %d -> %d", o.Revision, o2.Revision)
		}
		var r2 v1alpha1.Route
		_ = json.Unmarshal(o2.JSON, &r2)
		if r2.Metadata.CreationTimestamp != r.Metadata.CreationTimestamp || !o2.Created.Equal(o.Created) {
			t.Errorf("creationTimestamp changed on update: %s -> %s", r.Metadata.CreationTimestamp, r2.Metadata.CreationTimestamp)
		}
		ns := mustJSON(map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": "Upstream", "metadata": map[string]any{"name": "u", "namespace": "team"}, "spec": map[string]any{}})
		if _, err := s.Put(ctx, ns, ""); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			kind, ns string
			want     int
		}{{"Route", "", 1}, {"", AllNamespaces, 2}, {"Upstream", "team", 1}, {"Upstream", "", 0}, {"", "team", 1}} {
			l, err := s.List(ctx, c.kind, c.ns)
			if err != nil || len(l) != c.want {
				t.Errorf("List(%q, %q) = %d objects, %v; want %d", c.kind, c.ns, len(l), err, c.want)
			}
		}
		if err := s.Delete(ctx, "Route", "", "r1", o2.ResourceVersion); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "Route", "", "r1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after delete: %v", err)
		}
		if err := s.Delete(ctx, "Route", "", "r1", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		for _, bad := range []string{`{`, `{"kind":"Nope","metadata":{"name":"x"}}`, `{"kind":"Route","metadata":{}}`, `{"kind":"Route","metadata":{"name":"x"},"spec":{"hosts":3}}`} {
			if _, err := s.Put(ctx, json.RawMessage(bad), ""); !errors.Is(err, ErrInvalid) {
				t.Errorf("Put(%s): %v, want ErrInvalid", bad, err)
			}
		}
	})

	t.Run("Conflict", func(t *testing.T) {
		s := openMigrated(t, newDB(t))
		o, err := s.Put(ctx, route("r", "a"), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, route("r", "b"), o.ResourceVersion); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, route("r", "c"), o.ResourceVersion); !errors.Is(err, ErrConflict) {
			t.Errorf("stale put: %v", err)
		}
		if err := s.Delete(ctx, "Route", "", "r", o.ResourceVersion); !errors.Is(err, ErrConflict) {
			t.Errorf("stale delete: %v", err)
		}
		if _, err := s.Put(ctx, route("missing"), "1"); !errors.Is(err, ErrConflict) {
			t.Errorf("put of a missing object with an RV: %v", err)
		}
		got, _ := s.Get(ctx, "Route", "", "r")
		if !strings.Contains(string(got.JSON), `"b"`) {
			t.Errorf("a failed write changed the object: %s", got.JSON)
		}
	})

	t.Run("ApplyAtomic", func(t *testing.T) {
		s := openMigrated(t, newDB(t))
		if _, err := s.Put(ctx, route("existing"), ""); err != nil {
			t.Fatal(err)
		}
		rev0, _ := s.Revision(ctx)
		// One malformed object: rejected before the database.
		_, err := s.Apply(ctx, []Op{{Object: route("a")}, {Object: json.RawMessage(`{"kind":"Bogus"}`)}})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Apply with an invalid object: %v", err)
		}
		// One stale object after good ones: the transaction rolls back.
		_, err = s.Apply(ctx, []Op{{Object: route("a")}, {Object: route("b")}, {Delete: true, Key: keyOf("Route", "", "existing")}, {Object: route("existing"), ExpectedResourceVersion: "999"}})
		if !errors.Is(err, ErrConflict) {
			t.Errorf("Apply with a stale object: %v", err)
		}
		l, _ := s.List(ctx, "", AllNamespaces)
		if len(l) != 1 || l[0].Key.Name != "existing" {
			t.Errorf("failed Apply left %d objects", len(l))
		}
		if rev, _ := s.Revision(ctx); rev != rev0 {
			t.Errorf("revision moved from %d to %d", rev0, rev)
		}
		objs, err := s.Apply(ctx, []Op{{Object: route("a")}, {Object: route("b")}, {Delete: true, Key: keyOf("Route", "", "existing")}})
		if err != nil || len(objs) != 3 || objs[0] == nil || objs[2] != nil || objs[1].Revision != objs[0].Revision+1 {
			t.Fatalf("Apply = %+v, %v", objs, err)
		}
		if l, _ := s.List(ctx, "Route", ""); len(l) != 2 {
			t.Errorf("after Apply: %d routes", len(l))
		}
	})

	t.Run("HistoryRollback", func(t *testing.T) {
		s := openMigrated(t, newDB(t))
		o1, err := s.Put(WithActor(ctx, "alice"), route("r", "v1.example"), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(WithActor(ctx, "bob"), route("r", "v2.example"), ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(WithActor(ctx, "carol"), "Route", "", "r", ""); err != nil {
			t.Fatal(err)
		}
		h, err := s.History(ctx, "Route", "", "r")
		if err != nil || len(h) != 3 {
			t.Fatalf("History = %+v, %v", h, err)
		}
		var ops, actors []string
		for _, r := range h {
			ops, actors = append(ops, r.Operation), append(actors, r.Actor)
			if r.Time.IsZero() {
				t.Errorf("revision %d has no time", r.Revision)
			}
		}
		if !slices.Equal(ops, []string{OpCreate, OpUpdate, OpDelete}) || !slices.Equal(actors, []string{"alice", "bob", "carol"}) {
			t.Errorf("history ops %v actors %v", ops, actors)
		}
		if !strings.Contains(string(h[0].Object), "v1.example") || h[2].Object != nil {
			t.Errorf("history content: %s / %s", h[0].Object, h[2].Object)
		}
		back, err := s.Rollback(ctx, "Route", "", "r", o1.Revision, "dave")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "Route", "", "r")
		if err != nil || !strings.Contains(string(got.JSON), "v1.example") || got.Revision != back.Revision {
			t.Fatalf("after rollback: %+v %v", got, err)
		}
		h, _ = s.History(ctx, "Route", "", "r")
		if last := h[len(h)-1]; last.Operation != OpRollback || last.Actor != "dave" || len(h) != 4 {
			t.Errorf("rollback entry %+v", last)
		}
		if _, err := s.Rollback(ctx, "Route", "", "r", h[2].Revision, "dave"); !errors.Is(err, ErrInvalid) {
			t.Errorf("rollback to a delete: %v", err)
		}
		if _, err := s.Rollback(ctx, "Route", "", "r", 12345, "dave"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rollback to an unknown revision: %v", err)
		}
		if _, err := s.History(ctx, "Route", "", "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("history of an unknown object: %v", err)
		}
	})

	t.Run("Changes", func(t *testing.T) {
		s := openMigrated(t, newDB(t))
		if _, err := s.Put(ctx, route("before"), ""); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Changes(cctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, route("a"), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, []Op{{Object: route("b")}, {Object: route("c"), ExpectedResourceVersion: "77"}}); !errors.Is(err, ErrConflict) {
			t.Fatalf("failing apply: %v", err)
		}
		if _, err := s.Apply(ctx, []Op{{Object: route("b")}, {Delete: true, Key: keyOf("Route", "", "a")}}); err != nil {
			t.Fatal(err)
		}
		got := collect(t, ch, 3)
		want := []string{"create a", "create b", "delete a"}
		for i, c := range got {
			if s := c.Operation + " " + c.Key.Name; s != want[i] {
				t.Errorf("change %d = %s, want %s", i, s, want[i])
			}
			if i > 0 && c.Revision <= got[i-1].Revision {
				t.Errorf("revisions out of order: %+v", got)
			}
		}
		select {
		case c := <-ch:
			t.Errorf("unexpected change %+v", c)
		case <-time.After(200 * time.Millisecond):
		}
		cancel()
		for range ch { // closed once the subscriber's context ends
		}
	})

	t.Run("Resources", func(t *testing.T) {
		s := openMigrated(t, newDB(t))
		gw := &v1alpha1.Gateway{
			TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindGateway},
			Metadata: v1alpha1.ObjectMeta{Name: "default", Labels: map[string]string{"zone": "a"}},
			Spec:     v1alpha1.GatewaySpec{Listeners: []v1alpha1.Listener{{Name: "http", Protocol: v1alpha1.ProtocolHTTP, Port: 8080}}},
		}
		up := &v1alpha1.Upstream{
			TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindUpstream},
			Metadata: v1alpha1.ObjectMeta{Name: "backend", Namespace: "team"},
		}
		if _, err := s.Apply(ctx, []Op{{Object: mustJSON(gw)}, {Object: mustJSON(up)}, {Object: route("r", "x.example")}}); err != nil {
			t.Fatal(err)
		}
		rs, err := s.Resources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs.Gateways) != 1 || len(rs.Upstreams) != 1 || len(rs.Routes) != 1 {
			t.Fatalf("Resources = %+v", rs)
		}
		g := rs.Gateways[0]
		if _, err := strconv.ParseInt(g.Metadata.ResourceVersion, 10, 64); err != nil || g.Metadata.CreationTimestamp == "" {
			t.Errorf("gateway metadata %+v", g.Metadata)
		}
		g.Metadata.ResourceVersion, g.Metadata.CreationTimestamp = "", ""
		if !reflect.DeepEqual(g, gw) {
			t.Errorf("gateway round trip:\n got %+v\nwant %+v", g, gw)
		}
		if rs.Upstreams[0].Metadata.Namespace != "team" || rs.Routes[0].Spec.Hosts[0] != "x.example" {
			t.Errorf("round trip lost fields: %+v %+v", rs.Upstreams[0].Metadata, rs.Routes[0].Spec)
		}
	})

	t.Run("Migrations", func(t *testing.T) {
		s, err := Open(ctx, newDB(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		st, err := s.Status(ctx)
		if err != nil || st.Current != 0 || len(st.Pending) == 0 || st.Latest != st.Pending[len(st.Pending)-1] {
			t.Fatalf("Status of an empty database = %+v, %v", st, err)
		}
		applied, err := s.Migrate(ctx)
		if err != nil || !slices.Equal(applied, st.Pending) {
			t.Fatalf("Migrate = %v, %v; want %v", applied, err, st.Pending)
		}
		if applied, err := s.Migrate(ctx); err != nil || len(applied) != 0 {
			t.Fatalf("second Migrate = %v, %v", applied, err)
		}
		st, err = s.Status(ctx)
		if err != nil || st.Current != st.Latest || len(st.Pending) != 0 || len(st.Applied) == 0 {
			t.Fatalf("Status = %+v, %v", st, err)
		}
		// A newer binary's migration: refuse, never downgrade.
		ss := s.(*sqlStore)
		if _, err := ss.w.ExecContext(ctx, ss.q("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"), 9999, "later"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(ctx); !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("Migrate with a newer schema: %v", err)
		}
		if _, err := s.Status(ctx); !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("Status with a newer schema: %v", err)
		}
	})
}

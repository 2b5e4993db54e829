package distribute

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"portico.dev/portico/internal/ir"
)

// hostsBase is two listeners with four virtual hosts of three routes each.
func hostsBase() *ir.Snapshot {
	s := buildSnapshot("a", 3, 0, 0)
	for _, name := range []string{":8080", ":8081"} {
		l := ir.Listener{Name: name, Port: 8080, Protocol: ir.HTTP, Gateways: []string{"a/http"}}
		if name == ":8081" {
			l.Port = 8081
		}
		for _, h := range []string{"a.example", "b.example", "c.example", "*"} {
			vh := ir.VirtualHost{Hostname: h}
			for r := range 3 {
				vh.Routes = append(vh.Routes, ir.Route{
					Name: name + h + string(rune('0'+r)), Gateway: "a/http",
					Path:     ir.PathMatch{Type: ir.MatchPrefix, Value: "/" + string(rune('a'+r))},
					Backends: []ir.Backend{{Upstream: "a-up-1", Weight: 1}},
				})
			}
			l.VirtualHosts = append(l.VirtualHosts, vh)
		}
		s.Listeners = append(s.Listeners, l)
	}
	return reversion(s)
}

func TestDeltaVirtualHosts(t *testing.T) {
	type want struct {
		listenerUpserts []string
		sections        []string // listeners with a virtualHosts entry
		hostUpserts     []string // hostnames upserted, over all entries
		hostRemovals    []string
	}
	cases := []struct {
		name   string
		change func(s *ir.Snapshot)
		want   want
	}{
		{"route changed", func(s *ir.Snapshot) {
			s.Listeners[1].VirtualHosts[2].Routes[1].Path.Value = "/changed"
		}, want{sections: []string{":8081"}, hostUpserts: []string{"c.example"}}},
		{"host added", func(s *ir.Snapshot) {
			l := &s.Listeners[0]
			l.VirtualHosts = slices.Insert(l.VirtualHosts, 1, ir.VirtualHost{Hostname: "new.example", Routes: []ir.Route{}})
		}, want{sections: []string{":8080"}, hostUpserts: []string{"new.example"}}},
		{"host removed", func(s *ir.Snapshot) {
			l := &s.Listeners[0]
			l.VirtualHosts = slices.Delete(l.VirtualHosts, 0, 1)
		}, want{sections: []string{":8080"}, hostRemovals: []string{"a.example"}}},
		{"hosts reordered", func(s *ir.Snapshot) {
			vhs := s.Listeners[1].VirtualHosts
			vhs[0], vhs[1] = vhs[1], vhs[0]
		}, want{sections: []string{":8081"}}},
		{"all hosts removed", func(s *ir.Snapshot) {
			s.Listeners[1].VirtualHosts = nil
		}, want{sections: []string{":8081"}, hostRemovals: []string{"a.example", "b.example", "c.example", "*"}}},
		{"shell changed only", func(s *ir.Snapshot) {
			s.Listeners[0].Gateways = []string{"a/http", "b/http"}
		}, want{listenerUpserts: []string{":8080"}}},
		{"shell and a host changed", func(s *ir.Snapshot) {
			s.Listeners[0].Gateways = []string{"b/http"}
			s.Listeners[0].VirtualHosts[3].Routes = s.Listeners[0].VirtualHosts[3].Routes[:1]
		}, want{listenerUpserts: []string{":8080"}, sections: []string{":8080"}, hostUpserts: []string{"*"}}},
		{"listener added", func(s *ir.Snapshot) {
			l := s.Listeners[0]
			l.Name, l.Port = ":9090", 9090
			s.Listeners = append(s.Listeners, l)
		}, want{listenerUpserts: []string{":9090"}, sections: []string{":9090"},
			hostUpserts: []string{"a.example", "b.example", "c.example", "*"}}},
		{"listener without hosts added", func(s *ir.Snapshot) {
			s.Listeners = append(s.Listeners, ir.Listener{Name: ":9091", Port: 9091, Protocol: ir.HTTP})
		}, want{listenerUpserts: []string{":9091"}}},
		{"listener removed", func(s *ir.Snapshot) {
			s.Listeners = s.Listeners[1:]
		}, want{}},
		{"listeners reordered", func(s *ir.Snapshot) {
			s.Listeners[0], s.Listeners[1] = s.Listeners[1], s.Listeners[0]
		}, want{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := hostsBase()
			next := hostsBase()
			tc.change(next)
			reversion(next)
			if next.Version == base.Version {
				t.Fatal("the change did not change the version")
			}
			d, ok := diff(base, next)
			if !ok {
				t.Fatal("diff refused")
			}
			var got want
			for _, l := range d.Listeners.Upserts {
				got.listenerUpserts = append(got.listenerUpserts, l.Name)
				if len(l.VirtualHosts) != 0 {
					t.Errorf("listener %s travels with its virtual hosts", l.Name)
				}
			}
			for _, sec := range d.VirtualHosts {
				got.sections = append(got.sections, sec.Listener)
				for _, vh := range sec.Upserts {
					got.hostUpserts = append(got.hostUpserts, vh.Hostname)
				}
				got.hostRemovals = append(got.hostRemovals, sec.Removals...)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{
				{"listener upserts", got.listenerUpserts, tc.want.listenerUpserts},
				{"virtual host sections", got.sections, tc.want.sections},
				{"virtual host upserts", got.hostUpserts, tc.want.hostUpserts},
				{"virtual host removals", got.hostRemovals, tc.want.hostRemovals},
			} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			rebuilt, digest, err := applyDelta(base, itemsOf(base), d)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(digest.digest(), next.Digest()) {
				t.Error("the digest of the rebuilt snapshot differs from its full digest")
			}
			if mustJSON(t, rebuilt) != mustJSON(t, next) {
				t.Fatalf("rebuilt snapshot differs:\n got %s\nwant %s", mustJSON(t, rebuilt), mustJSON(t, next))
			}
			// Over the wire as well: the delta decodes to the same rebuild.
			var m ServerMessage
			if err := (Codec{}).Unmarshal([]byte(mustJSON(t, ServerMessage{Delta: d})), &m); err != nil {
				t.Fatal(err)
			}
			if rebuilt, _, err = applyDelta(base, nil, m.Delta); err != nil {
				t.Fatal(err)
			}
			if mustJSON(t, rebuilt) != mustJSON(t, next) {
				t.Fatal("rebuilt snapshot from the wire differs")
			}
			// Virtual hosts that did not travel are the base's, not copies.
			shared := 0
			for _, l := range rebuilt.Listeners {
				for _, vh := range l.VirtualHosts {
					for _, bl := range base.Listeners {
						for _, bvh := range bl.VirtualHosts {
							if len(vh.Routes) > 0 && len(bvh.Routes) > 0 && &vh.Routes[0] == &bvh.Routes[0] {
								shared++
							}
						}
					}
				}
			}
			travelled := len(got.hostUpserts)
			total := 0
			for _, l := range next.Listeners {
				total += len(l.VirtualHosts)
			}
			if shared != total-travelled {
				t.Errorf("%d virtual hosts shared with the base, want %d", shared, total-travelled)
			}
		})
	}
}

func TestDeltaVirtualHostsRejects(t *testing.T) {
	base := hostsBase()
	next := hostsBase()
	next.Listeners[0].VirtualHosts[1].Routes[0].Method = "POST"
	reversion(next)

	dupe := hostsBase()
	dupe.Listeners[1].VirtualHosts[1].Hostname = "a.example"
	if _, ok := diff(base, reversion(dupe)); ok {
		t.Error("diff accepted duplicate hostnames in a listener")
	}
	if _, ok := diff(dupe, next); ok {
		t.Error("diff accepted a base with duplicate hostnames")
	}

	for _, tc := range []struct {
		name   string
		mangle func(d *Delta)
		want   string
	}{
		{"unknown listener", func(d *Delta) { d.VirtualHosts[0].Listener = ":1" }, `":1" is not in the snapshot`},
		{"listener twice", func(d *Delta) { d.VirtualHosts = append(d.VirtualHosts, d.VirtualHosts[0]) }, "twice"},
		{"shell with hosts", func(d *Delta) {
			d.Listeners.Upserts = append(d.Listeners.Upserts, next.Listeners[0])
		}, "carries virtual hosts"},
		{"unknown host", func(d *Delta) { d.VirtualHosts[0].Order[2] = "ghost" }, "ghost"},
		{"unknown host removal", func(d *Delta) { d.VirtualHosts[0].Removals = []string{"ghost"} }, "ghost"},
		{"missing section", func(d *Delta) { d.VirtualHosts = nil }, "announced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := diff(base, next)
			if !ok {
				t.Fatal("diff refused")
			}
			tc.mangle(d)
			if _, _, err := applyDelta(base, nil, d); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

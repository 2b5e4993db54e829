package ir

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// versionSnapshot has two listeners, one with two virtual hosts.
func versionSnapshot() *Snapshot {
	s := validSnapshot()
	s.Listeners[0].VirtualHosts = append(s.Listeners[0].VirtualHosts, VirtualHost{Hostname: "a.example", Routes: []Route{{
		Name: "r2", Path: PathMatch{Type: MatchExact, Value: "/x"}, Backends: []Backend{{Upstream: "u", Weight: 1}},
	}}})
	s.Listeners = append(s.Listeners, Listener{Name: ":8080", Port: 8080, Protocol: HTTP})
	s.StreamRoutes = []StreamRoute{{Name: "s", Listener: ":8080", Backends: []Backend{{Upstream: "u", Weight: 1}}}}
	s.Consumers = []Consumer{{Name: "bob"}}
	return s
}

func TestVersionDistinguishesStructure(t *testing.T) {
	base := versionSnapshot()
	base.ComputeVersion()
	seen := map[string]string{base.Version: "base"}
	for name, mutate := range map[string]func(*Snapshot){
		"route field":   func(s *Snapshot) { s.Listeners[0].VirtualHosts[1].Routes[0].Method = "GET" },
		"shell field":   func(s *Snapshot) { s.Listeners[1].Gateways = []string{"g/l"} },
		"hosts swapped": func(s *Snapshot) { vh := s.Listeners[0].VirtualHosts; vh[0], vh[1] = vh[1], vh[0] },
		"host moved": func(s *Snapshot) {
			s.Listeners[1].VirtualHosts, s.Listeners[0].VirtualHosts = s.Listeners[0].VirtualHosts[1:], s.Listeners[0].VirtualHosts[:1]
		},
		"host removed":      func(s *Snapshot) { s.Listeners[0].VirtualHosts = s.Listeners[0].VirtualHosts[:1] },
		"listeners swapped": func(s *Snapshot) { s.Listeners[0], s.Listeners[1] = s.Listeners[1], s.Listeners[0] },
		"no consumers":      func(s *Snapshot) { s.Consumers = nil },
		"consumer field":    func(s *Snapshot) { s.Consumers[0].Groups = []string{"g"} },
		"upstream field":    func(s *Snapshot) { s.Upstreams[0].Algorithm = "random" },
		"certificate":       func(s *Snapshot) { s.Certificates[0].Key = "other" },
		"stream route":      func(s *Snapshot) { s.StreamRoutes[0].IdleTimeoutMillis = 1 },
		// The same item hashes in another list must not give the same version.
		"consumer as stream route": func(s *Snapshot) { s.StreamRoutes, s.Consumers = nil, []Consumer{{Name: "bob"}, {Name: "s"}} },
	} {
		s := versionSnapshot()
		mutate(s)
		s.ComputeVersion()
		if prev, dup := seen[s.Version]; dup {
			t.Errorf("%s: same version %s as %s", name, s.Version, prev)
		}
		seen[s.Version] = name
	}
}

func TestVersionFollowsJSON(t *testing.T) {
	a := versionSnapshot()
	a.ComputeVersion()
	// A JSON round trip (nil and empty lists alike) and the Version field itself do
	// not change the version.
	b := &Snapshot{}
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, b); err != nil {
		t.Fatal(err)
	}
	b.Listeners[1].VirtualHosts = []VirtualHost{}
	b.Version = "something else"
	b.ComputeVersion()
	if a.Version != b.Version || len(a.Version) != 16 {
		t.Fatalf("versions %q and %q", a.Version, b.Version)
	}
	if got := (&Snapshot{}).Digest().Version(); got == "" || got == a.Version {
		t.Fatalf("empty snapshot version %q", got)
	}
}

// TestDigestReusesItemHashes builds the digest of a changed snapshot from the old one's
// hashes plus the hash of the one changed item, as a data plane does for a delta.
func TestDigestReusesItemHashes(t *testing.T) {
	old := versionSnapshot()
	d := old.Digest()
	next := versionSnapshot()
	next.Listeners[0].VirtualHosts[1].Routes[0].Path.Value = "/y"
	next.Listeners[1].Address = "127.0.0.1"
	next.ComputeVersion()

	nd := &Digest{
		Listeners:    append([]ListenerDigest(nil), d.Listeners...),
		Upstreams:    d.Upstreams,
		Certificates: d.Certificates,
		StreamRoutes: d.StreamRoutes,
		Consumers:    d.Consumers,
	}
	nd.Listeners[0].VirtualHosts = []Hash{d.Listeners[0].VirtualHosts[0], HashOf(&next.Listeners[0].VirtualHosts[1])}
	nd.Listeners[1].Shell = HashListenerShell(&next.Listeners[1])
	if got := nd.Version(); got != next.Version {
		t.Fatalf("incremental version %s, full %s", got, next.Version)
	}
	if HashListenerShell(&next.Listeners[0]) != d.Listeners[0].Shell {
		t.Fatal("a listener's shell hash depends on its virtual hosts")
	}
}

// sharing returns a copy of s that shares every virtual host's routes and every
// upstream's endpoints with s, as a snapshot rebuilt from a delta does.
func sharing(s *Snapshot) *Snapshot {
	c := *s
	c.Listeners = append([]Listener(nil), s.Listeners...)
	for i := range c.Listeners {
		c.Listeners[i].VirtualHosts = append([]VirtualHost(nil), s.Listeners[i].VirtualHosts...)
	}
	c.Upstreams = append([]Upstream(nil), s.Upstreams...)
	return &c
}

func TestValidateFromChecksWhatChanged(t *testing.T) {
	prev := versionSnapshot()
	if err := prev.Validate(); err != nil {
		t.Fatal(err)
	}

	// A changed virtual host (new routes) is checked.
	next := sharing(prev)
	next.Listeners[0].VirtualHosts[1].Routes = []Route{{Name: "bad", Path: PathMatch{Type: MatchExact, Value: "x"}}}
	if err := next.ValidateFrom(prev); err == nil || !strings.Contains(err.Error(), `route "bad": path "x" must start with /`) {
		t.Fatalf("changed host: %v", err)
	}

	// An upstream gone: the unchanged routes that use it are rejected, as Validate does.
	next = sharing(prev)
	next.Upstreams = []Upstream{{Name: "v", Protocol: UpstreamHTTP, Endpoints: []Endpoint{{Address: "127.0.0.1:2", Weight: 1}}}}
	next.StreamRoutes = nil
	want := next.Validate()
	got := next.ValidateFrom(prev)
	if want == nil || got == nil || got.Error() != want.Error() {
		t.Fatalf("upstream gone: ValidateFrom %v, Validate %v", got, want)
	}
	if !strings.Contains(got.Error(), `listener ":8443" host "a.example" route "r2": unknown upstream "u"`) {
		t.Fatalf("upstream gone: %v", got)
	}

	// Unchanged parts are not checked again: an in-place edit of prev, which the
	// contract forbids, goes unseen, while everything new is still checked.
	next = sharing(prev)
	next.Listeners[0].VirtualHosts[0].Routes[0].Path.Value = "not checked"
	next.Upstreams[0].Endpoints[0].Weight = 0
	if err := next.ValidateFrom(prev); err != nil {
		t.Fatalf("unchanged parts were checked again: %v", err)
	}
	if err := next.Validate(); err == nil {
		t.Fatal("Validate accepted the edited snapshot")
	}
	next.Listeners[1].Port = 0
	next.Consumers = append(next.Consumers, Consumer{Name: "bob"})
	if err := next.ValidateFrom(prev); err == nil || !strings.Contains(err.Error(), "port 0") || !strings.Contains(err.Error(), `consumer "bob": duplicate`) {
		t.Fatalf("listener and consumer checks: %v", err)
	}
}

func TestValidateFromAgreesWithValidate(t *testing.T) {
	prev := versionSnapshot()
	for name, mutate := range map[string]func(*Snapshot){
		"nothing":          func(*Snapshot) {},
		"unknown cert":     func(s *Snapshot) { s.Listeners[0].Certificates = []string{"x"} },
		"stream listener":  func(s *Snapshot) { s.Listeners = s.Listeners[:1] },
		"endpoint changed": func(s *Snapshot) { s.Upstreams[0].Endpoints = []Endpoint{{Address: "nope", Weight: 1}} },
		"route regex": func(s *Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes = []Route{{Name: "r", Path: PathMatch{Type: MatchRegex, Value: "("}}}
		},
		"redirect": func(s *Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes = []Route{{Name: "r", Path: PathMatch{Type: MatchPrefix, Value: "/"}, Redirect: &Redirect{StatusCode: 200}}}
		},
	} {
		next := sharing(prev)
		mutate(next)
		want, got := next.Validate(), next.ValidateFrom(prev)
		if (want == nil) != (got == nil) || (want != nil && want.Error() != got.Error()) {
			t.Errorf("%s: ValidateFrom %v, Validate %v", name, got, want)
		}
	}
}

// TestDigestCoversTheSnapshot guards the version scheme: a new list in Snapshot, or a
// field after VirtualHosts in Listener, must be taken into Digest (and into the data
// plane's cache encoding, internal/distribute items.go) before this test is updated.
func TestDigestCoversTheSnapshot(t *testing.T) {
	var names []string
	st := reflect.TypeFor[Snapshot]()
	for i := range st.NumField() {
		names = append(names, st.Field(i).Name)
	}
	if want := []string{"Version", "Listeners", "Upstreams", "Certificates", "StreamRoutes", "Consumers"}; !slices.Equal(names, want) {
		t.Errorf("Snapshot fields %v, Digest knows %v", names, want)
	}
	lt := reflect.TypeFor[Listener]()
	if last := lt.Field(lt.NumField() - 1).Name; last != "VirtualHosts" {
		t.Errorf("Listener's last field is %s, not VirtualHosts", last)
	}
}

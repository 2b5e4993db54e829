package ir

import (
	"encoding/json"
	"strings"
	"testing"
)

func validSnapshot() *Snapshot {
	return &Snapshot{
		Upstreams:    []Upstream{{Name: "u", Protocol: UpstreamHTTP, Algorithm: "round-robin", Endpoints: []Endpoint{{Address: "127.0.0.1:1", Weight: 1}}}},
		Certificates: []Certificate{{Name: "c", Cert: "x", Key: "secret"}},
		Listeners: []Listener{{
			Name: ":8443", Port: 8443, Protocol: HTTPS, Certificates: []string{"c"},
			VirtualHosts: []VirtualHost{{Hostname: "*", Routes: []Route{{
				Name: "r", Path: PathMatch{Type: MatchPrefix, Value: "/"}, Backends: []Backend{{Upstream: "u", Weight: 1}},
			}}}},
		}},
	}
}

func TestValidateAcceptsConsistentSnapshot(t *testing.T) {
	if err := validSnapshot().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejectsInconsistencies(t *testing.T) {
	cases := map[string]struct {
		mutate func(*Snapshot)
		want   string
	}{
		"unknown upstream":    {func(s *Snapshot) { s.Listeners[0].VirtualHosts[0].Routes[0].Backends[0].Upstream = "x" }, `unknown upstream "x"`},
		"unknown certificate": {func(s *Snapshot) { s.Listeners[0].Certificates = []string{"nope"} }, `unknown certificate "nope"`},
		"https without cert":  {func(s *Snapshot) { s.Listeners[0].Certificates = nil }, "HTTPS without a certificate"},
		"bad port":            {func(s *Snapshot) { s.Listeners[0].Port = 0 }, "port 0 out of range"},
		"bad regex": {func(s *Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes[0].Path = PathMatch{Type: MatchRegex, Value: "(x"}
		}, "path regex"},
		"relative path":      {func(s *Snapshot) { s.Listeners[0].VirtualHosts[0].Routes[0].Path.Value = "x" }, "must start with /"},
		"bad endpoint":       {func(s *Snapshot) { s.Upstreams[0].Endpoints[0].Address = "nope" }, `endpoint "nope"`},
		"zero weight":        {func(s *Snapshot) { s.Upstreams[0].Endpoints[0].Weight = 0 }, "weight 0 < 1"},
		"redirect code":      {func(s *Snapshot) { s.Listeners[0].VirtualHosts[0].Routes[0].Redirect = &Redirect{StatusCode: 200} }, "redirect status 200"},
		"duplicate listener": {func(s *Snapshot) { s.Listeners = append(s.Listeners, s.Listeners[0]) }, "duplicate"},
		"stream route listener": {func(s *Snapshot) {
			s.StreamRoutes = []StreamRoute{{Name: "s", Listener: ":9", Backends: []Backend{{Upstream: "u", Weight: 1}}}}
		}, `unknown listener ":9"`},
	}
	for name, c := range cases {
		s := validSnapshot()
		c.mutate(s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestVersionFollowsContent(t *testing.T) {
	a, b := validSnapshot(), validSnapshot()
	a.ComputeVersion()
	b.ComputeVersion()
	if a.Version == "" || a.Version != b.Version {
		t.Fatalf("equal content, versions %q and %q", a.Version, b.Version)
	}
	b.Upstreams[0].Endpoints[0].Address = "127.0.0.1:2"
	b.ComputeVersion()
	if a.Version == b.Version {
		t.Fatal("different content, same version")
	}
}

func TestRedactedHidesKeysWithoutTouchingOriginal(t *testing.T) {
	s := validSnapshot()
	r := s.Redacted()
	if r.Certificates[0].Key != "<redacted>" || s.Certificates[0].Key != "secret" {
		t.Fatalf("redacted %q, original %q", r.Certificates[0].Key, s.Certificates[0].Key)
	}
}

func TestRedactedHidesUpstreamClientKeys(t *testing.T) {
	s := &Snapshot{Upstreams: []Upstream{{Name: "u", TLS: &UpstreamTLS{ClientCertificate: "c", ClientKey: "k"}}, {Name: "plain"}}}
	r := s.Redacted()
	if r.Upstreams[0].TLS.ClientKey != "<redacted>" || r.Upstreams[0].TLS.ClientCertificate != "c" {
		t.Fatalf("not redacted: %+v", r.Upstreams[0].TLS)
	}
	if s.Upstreams[0].TLS.ClientKey != "k" {
		t.Fatal("Redacted changed the original")
	}
}

func TestRedactedHidesCredentials(t *testing.T) {
	s := validSnapshot()
	s.Consumers = []Consumer{{Name: "alice", Groups: []string{"g"},
		Credentials: []Credential{{Type: "key-auth", Fields: map[string]string{"keyHash": "abcd"}}}}}
	r := s.Redacted()
	cr := r.Consumers[0].Credentials[0]
	if cr.Type != "key-auth" || cr.Fields["keyHash"] != "<redacted>" || len(cr.Fields) != 1 {
		t.Fatalf("redacted credential = %+v", cr)
	}
	if r.Consumers[0].Name != "alice" || r.Consumers[0].Groups[0] != "g" {
		t.Fatalf("redacted consumer = %+v", r.Consumers[0])
	}
	if s.Consumers[0].Credentials[0].Fields["keyHash"] != "abcd" {
		t.Fatal("Redacted changed the original")
	}
}

func TestValidatePluginsAndConsumers(t *testing.T) {
	route := func(s *Snapshot) *Route { return &s.Listeners[0].VirtualHosts[0].Routes[0] }
	ok := validSnapshot()
	route(ok).Plugins = []PluginSpec{{Name: "a", Config: []byte(`{"x":1}`)}, {Name: "b"}}
	ok.Consumers = []Consumer{{Name: "alice", Plugins: []PluginSpec{{Name: "a"}}}, {Name: "bob"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		mutate func(*Snapshot)
		want   string
	}{
		"unnamed plugin":     {func(s *Snapshot) { route(s).Plugins = []PluginSpec{{}} }, "plugin 0 without a name"},
		"plugin twice":       {func(s *Snapshot) { route(s).Plugins = []PluginSpec{{Name: "a"}, {Name: "a"}} }, `plugin "a" twice`},
		"bad config":         {func(s *Snapshot) { route(s).Plugins = []PluginSpec{{Name: "a", Config: []byte("{")}} }, "not valid JSON"},
		"duplicate consumer": {func(s *Snapshot) { s.Consumers = []Consumer{{Name: "a"}, {Name: "a"}} }, `consumer "a": duplicate name`},
		"unnamed consumer":   {func(s *Snapshot) { s.Consumers = []Consumer{{}} }, "consumer without a name"},
		"consumer plugin":    {func(s *Snapshot) { s.Consumers = []Consumer{{Name: "a", Plugins: []PluginSpec{{}}}} }, `consumer "a": plugin 0`},
		"credential type":    {func(s *Snapshot) { s.Consumers = []Consumer{{Name: "a", Credentials: []Credential{{}}}} }, "credential without a type"},
	}
	for name, c := range cases {
		s := validSnapshot()
		c.mutate(s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

func TestRedactedHidesSecretsInPluginConfigs(t *testing.T) {
	s := validSnapshot()
	cfg := `{"policy":"redis","redis":{"address":"127.0.0.1:6379","password":"hunter2"},"requests":5}`
	s.Listeners[0].VirtualHosts[0].Routes[0].Plugins = []PluginSpec{{Name: "rate-limit", Config: json.RawMessage(cfg)}}
	r := s.Redacted()
	got := string(r.Listeners[0].VirtualHosts[0].Routes[0].Plugins[0].Config)
	if strings.Contains(got, "hunter2") || !strings.Contains(got, `"requests":5`) || !strings.Contains(got, "127.0.0.1:6379") {
		t.Fatalf("redacted config %s", got)
	}
	if orig := string(s.Listeners[0].VirtualHosts[0].Routes[0].Plugins[0].Config); orig != cfg {
		t.Fatalf("original changed: %s", orig)
	}
}

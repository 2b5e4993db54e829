package iprestriction

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"portico.dev/portico/internal/plugin"
)

func build(t testing.TB, cfg string) *plugin.Chain {
	t.Helper()
	ch, err := plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(cfg)}}, &plugin.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// run sends a request from peer with the given X-Forwarded-For lines; it returns the
// status and the client IP later plugins see.
func run(t *testing.T, ch *plugin.Chain, peer string, xff ...string) (int, string) {
	t.Helper()
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = peer
	r.Header["X-Forwarded-For"] = xff
	c := &plugin.Context{Request: r, ClientIP: "peer"}
	err := ch.Run(plugin.PhaseAccess, c)
	var reply *plugin.Reply
	if errors.As(err, &reply) {
		if reply.Status == 403 && !strings.Contains(string(reply.Body), "ip_forbidden") {
			t.Fatalf("body %s", reply.Body)
		}
		return reply.Status, c.ClientIP
	}
	if err != nil {
		t.Fatal(err)
	}
	return 200, c.ClientIP
}

func TestAllowAndDeny(t *testing.T) {
	allow := build(t, `{"allow":["10.0.0.0/8","192.168.1.7","2001:db8::/32"]}`)
	deny := build(t, `{"deny":["10.0.0.0/8"]}`)
	for _, tc := range []struct {
		peer            string
		allowSt, denySt int
	}{
		{"10.1.2.3:5000", 200, 403},
		{"192.168.1.7:1", 200, 200},
		{"192.168.1.8:1", 403, 200},
		{"[2001:db8::1]:443", 200, 200},
		{"[::ffff:10.0.0.1]:80", 200, 403}, // IPv4-mapped matches the IPv4 range
		{"garbage", 403, 403},
	} {
		if st, _ := run(t, allow, tc.peer); st != tc.allowSt {
			t.Errorf("allow %s: %d", tc.peer, st)
		}
		if st, _ := run(t, deny, tc.peer); st != tc.denySt {
			t.Errorf("deny %s: %d", tc.peer, st)
		}
	}
}

func TestForwardedForOnlyFromTrustedPeers(t *testing.T) {
	ch := build(t, `{"allow":["203.0.113.0/24"],"trustedProxies":["10.0.0.0/8"]}`)
	cases := []struct {
		name, peer string
		xff        []string
		want       int
		client     string
	}{
		{"untrusted peer's XFF is ignored", "198.51.100.1:1", []string{"203.0.113.5"}, 403, "peer"},
		{"trusted peer: right-most entry", "10.0.0.1:1", []string{"203.0.113.5"}, 200, "203.0.113.5"},
		{"spoofed left entries are skipped", "10.0.0.1:1", []string{"203.0.113.9, 198.51.100.7"}, 403, "198.51.100.7"},
		{"trusted hops are skipped", "10.0.0.1:1", []string{"198.51.100.7, 203.0.113.5, 10.0.0.2"}, 200, "203.0.113.5"},
		{"several header lines", "10.0.0.1:1", []string{"198.51.100.7", "203.0.113.5, 10.0.0.9"}, 200, "203.0.113.5"},
		{"all trusted: left-most", "10.0.0.1:1", []string{"10.0.0.3, 10.0.0.2"}, 403, "10.0.0.3"},
		{"no header: the peer", "10.0.0.1:1", nil, 403, "peer"},
		{"garbage entry refused", "10.0.0.1:1", []string{"203.0.113.5, nonsense"}, 403, "peer"},
		{"entry with port", "10.0.0.1:1", []string{"[2001:db8::1]:80, 203.0.113.5:4000"}, 200, "203.0.113.5"},
	}
	for _, tc := range cases {
		st, client := run(t, ch, tc.peer, tc.xff...)
		if st != tc.want || (st == 200 && client != tc.client) {
			t.Errorf("%s: %d client %q, want %d %q", tc.name, st, client, tc.want, tc.client)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{}`: "allow",
		`{"allow":["1.2.3.4"],"deny":["5.6.7.8"]}`:       "deny",
		`{"allow":["1.2.3.4","10.0.0.0/33"]}`:            "allow[1]",
		`{"deny":["nope"]}`:                              "deny[0]",
		`{"allow":["1.2.3.4"],"trustedProxies":["x/8"]}`: "trustedProxies[0]",
	} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		var fe *plugin.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v, want field %q", cfg, err, field)
		}
	}
}

func BenchmarkAllowPeer(b *testing.B) {
	ch := build(b, `{"allow":["10.0.0.0/8","192.168.0.0/16","172.16.0.0/12"]}`)
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = "192.168.3.4:5555"
	c := &plugin.Context{Request: r}
	b.ReportAllocs()
	for b.Loop() {
		if err := ch.Run(plugin.PhaseAccess, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTrustedForwardedFor(b *testing.B) {
	ch := build(b, `{"deny":["198.51.100.0/24"],"trustedProxies":["10.0.0.0/8"]}`)
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = "10.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.5, 10.0.0.2")
	c := &plugin.Context{Request: r}
	b.ReportAllocs()
	for b.Loop() {
		if err := ch.Run(plugin.PhaseAccess, c); err != nil {
			b.Fatal(err)
		}
	}
}

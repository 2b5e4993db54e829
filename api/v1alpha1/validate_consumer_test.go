package v1alpha1

import (
	"strings"
	"testing"
)

func TestConsumerValidate(t *testing.T) {
	ok := &Consumer{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindConsumer}, Metadata: ObjectMeta{Name: "alice"},
		Spec: ConsumerSpec{
			Credentials: []Credential{{Type: CredentialKeyAuth, Key: "alice-secret-key"}},
			Groups:      []string{"admins"},
			Plugins:     []PluginRef{{Name: "rate-limit"}},
		}}
	check(t, "valid", ok.Validate())

	bad := &Consumer{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindConsumer}, Metadata: ObjectMeta{Name: "bob"},
		Spec: ConsumerSpec{
			Credentials: []Credential{
				{Key: "whatever-key"},
				{Type: CredentialKeyAuth, Key: "short"},
				{Type: "oauth", Key: "x"},
				{Type: CredentialKeyAuth},
				{Type: CredentialKeyAuth, Key: "long-enough-key"},
				{Type: CredentialKeyAuth, Key: "long-enough-key"},
			},
			Groups:  []string{"", "a", "a", "has space"},
			Plugins: []PluginRef{{}, {Name: "x"}, {Name: "x"}},
		}}
	errs := bad.Validate()
	check(t, "invalid", errs,
		"spec.credentials[0].type", "spec.credentials[1].key", "spec.credentials[2].type", "spec.credentials[3].key",
		"spec.credentials[5].key", "spec.groups[0]", "spec.groups[2]", "spec.groups[3]",
		"spec.plugins[0].name", "spec.plugins[2].name")
	for _, e := range errs {
		if strings.Contains(e.Message, "long-enough-key") || strings.Contains(e.Message, "short") {
			t.Errorf("message repeats a secret: %v", e)
		}
		if e.Field == "spec.credentials[2].type" && !strings.Contains(e.Message, "one of key-auth") {
			t.Errorf("unknown type message does not list the known ones: %v", e)
		}
	}
}

func TestPluginValidate(t *testing.T) {
	tm := TypeMeta{APIVersion: APIVersion, Kind: KindPlugin}
	global := &Plugin{TypeMeta: tm, Metadata: ObjectMeta{Name: "cors"}, Spec: PluginSpec{Plugin: "cors"}}
	check(t, "global", global.Validate())
	attached := &Plugin{TypeMeta: tm, Metadata: ObjectMeta{Name: "rl"},
		Spec: PluginSpec{Plugin: "rate-limit", Config: map[string]any{"requests": 5}, AttachTo: &AttachRef{Kind: KindRoute, Name: "r"}}}
	check(t, "attached", attached.Validate())
	bad := &Plugin{TypeMeta: tm, Metadata: ObjectMeta{Name: "bad"}, Spec: PluginSpec{AttachTo: &AttachRef{Kind: "Consumer"}}}
	check(t, "invalid", bad.Validate(), "spec.plugin", "spec.attachTo.kind", "spec.attachTo.name")
	noKind := &Plugin{TypeMeta: tm, Metadata: ObjectMeta{Name: "bad"}, Spec: PluginSpec{Plugin: "cors", AttachTo: &AttachRef{Name: "g"}}}
	check(t, "no kind", noKind.Validate(), "spec.attachTo.kind")
}

func TestPluginRefsOnGatewayAndUpstream(t *testing.T) {
	g := &Gateway{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindGateway}, Metadata: ObjectMeta{Name: "g"},
		Spec: GatewaySpec{Listeners: []Listener{{Name: "http", Port: 80, Protocol: ProtocolHTTP}},
			Plugins: []PluginRef{{Name: "cors"}, {Name: ""}, {Name: "cors"}}}}
	check(t, "gateway", g.Validate(), "spec.plugins[1].name", "spec.plugins[2].name")
	u := &Upstream{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindUpstream}, Metadata: ObjectMeta{Name: "u"},
		Spec: UpstreamSpec{Endpoints: []Endpoint{{Address: "127.0.0.1:80"}}, Plugins: []PluginRef{{Name: "Bad Name"}}}}
	check(t, "upstream", u.Validate(), "spec.plugins[0].name")
}

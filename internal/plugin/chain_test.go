package plugin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// recorder is a test plugin that records its calls into the request context.
type recorderConfig struct {
	Tag      string `json:"tag"`
	Reply    int    `json:"reply,omitempty"`
	Identify string `json:"identify,omitempty"`
	Fail     bool   `json:"fail,omitempty"`
}

func (c *recorderConfig) Validate() error {
	if c.Tag == "" {
		return &FieldError{Field: "tag", Message: "required"}
	}
	return nil
}

type recorder struct {
	cfg *recorderConfig
	env *Env
}

func (r *recorder) Access(c *Context) error {
	trail, _ := c.Get("trail")
	s, _ := trail.(string)
	c.Set("trail", s+r.cfg.Tag+";")
	if r.cfg.Fail {
		return errors.New("boom")
	}
	if r.cfg.Reply != 0 {
		return JSONError(r.cfg.Reply, "stopped", r.cfg.Tag)
	}
	if r.cfg.Identify != "" {
		c.Consumer, _ = r.env.Consumers.Get(r.cfg.Identify)
	}
	return nil
}

func init() {
	// Names from Order so their relative order is the list's: key-auth < acl < rate-limit.
	for _, name := range []string{"key-auth", "acl", "rate-limit", "zz-custom"} {
		Register(&Definition{
			Name:      name,
			NewConfig: func() any { return &recorderConfig{} },
			New: func(cfg any, env *Env) (any, error) {
				return &recorder{cfg: cfg.(*recorderConfig), env: env}, nil
			},
		})
	}
}

func spec(name, cfg string) Spec { return Spec{Name: name, Config: json.RawMessage(cfg)} }

func trail(c *Context) string { v, _ := c.Get("trail"); s, _ := v.(string); return s }

func TestChainRunsInTheOneOrder(t *testing.T) {
	ch, err := Build([]Spec{
		spec("zz-custom", `{"tag":"custom"}`),
		spec("rate-limit", `{"tag":"limit"}`),
		spec("key-auth", `{"tag":"auth"}`),
		spec("acl", `{"tag":"acl"}`),
	}, &Env{})
	if err != nil {
		t.Fatal(err)
	}
	c := &Context{}
	if err := ch.Run(PhaseAccess, c); err != nil {
		t.Fatal(err)
	}
	if got := trail(c); got != "auth;acl;limit;custom;" {
		t.Fatalf("order %q", got)
	}
	if strings.Join(ch.Names(), ",") != "key-auth,acl,rate-limit,zz-custom" {
		t.Fatalf("names %v", ch.Names())
	}
}

func TestReplyStopsTheChainAndErrorsNameThePlugin(t *testing.T) {
	ch, _ := Build([]Spec{spec("key-auth", `{"tag":"a","reply":401}`), spec("acl", `{"tag":"b"}`)}, &Env{})
	c := &Context{}
	err := ch.Run(PhaseAccess, c)
	var reply *Reply
	if !errors.As(err, &reply) || reply.Status != 401 || trail(c) != "a;" {
		t.Fatalf("err %v trail %q", err, trail(c))
	}
	ch, _ = Build([]Spec{spec("acl", `{"tag":"b","fail":true}`)}, &Env{})
	err = ch.Run(PhaseAccess, &Context{})
	if err == nil || !strings.Contains(err.Error(), `plugin "acl" (access): boom`) {
		t.Fatalf("err %v", err)
	}
}

func TestConfigIsStrictAndValidated(t *testing.T) {
	if _, err := DecodeConfig("acl", json.RawMessage(`{"tag":"x","bogus":1}`)); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field accepted: %v", err)
	}
	var fe *FieldError
	if _, err := DecodeConfig("acl", nil); !errors.As(err, &fe) || fe.Field != "tag" {
		t.Fatalf("validation: %v", err)
	}
	if _, err := DecodeConfig("nope", nil); err == nil {
		t.Fatal("unknown plugin accepted")
	}
	if _, err := Build([]Spec{spec("acl", `{"tag":"a"}`), spec("acl", `{"tag":"b"}`)}, &Env{}); err == nil {
		t.Fatal("duplicate plugin accepted")
	}
}

// TestConsumerPluginsOverrideOnceIdentified: after key-auth identifies alice, her own
// rate-limit replaces the route's for the rest of the access phase.
func TestConsumerPluginsOverrideOnceIdentified(t *testing.T) {
	env := &Env{}
	alice, err := NewConsumer("alice", []string{"staff"}, nil, []Spec{spec("rate-limit", `{"tag":"alice-limit"}`)}, env)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := NewConsumer("bob", nil, nil, nil, env)
	env.Consumers = NewConsumers([]*Consumer{alice, bob})

	for _, tc := range []struct{ who, want string }{
		{"alice", "auth;acl;alice-limit;"},
		{"bob", "auth;acl;route-limit;"},
	} {
		ch, err := Build([]Spec{
			spec("key-auth", `{"tag":"auth","identify":"`+tc.who+`"}`),
			spec("acl", `{"tag":"acl"}`),
			spec("rate-limit", `{"tag":"route-limit"}`),
		}, env)
		if err != nil {
			t.Fatal(err)
		}
		c := &Context{}
		if err := ch.Run(PhaseAccess, c); err != nil {
			t.Fatal(err)
		}
		if trail(c) != tc.want {
			t.Errorf("%s: trail %q, want %q", tc.who, trail(c), tc.want)
		}
	}
	if !alice.InGroup("staff") || alice.InGroup("admin") {
		t.Fatal("InGroup")
	}
}

// TestCustomPluginsChooseTheirPlace: custom plugins anchored after key-auth run right
// after it (higher priority first), before acl; unanchored ones run after every built-in.
func TestCustomPluginsChooseTheirPlace(t *testing.T) {
	for _, d := range []struct {
		name     string
		priority int
	}{{"custom-low", 1}, {"custom-high", 5}} {
		Register(&Definition{
			Name: d.name, After: "key-auth", Priority: d.priority,
			NewConfig: func() any { return &recorderConfig{} },
			New: func(cfg any, env *Env) (any, error) {
				return &recorder{cfg: cfg.(*recorderConfig), env: env}, nil
			},
		})
	}
	ch, err := Build([]Spec{
		spec("zz-custom", `{"tag":"last"}`),
		spec("custom-low", `{"tag":"low"}`),
		spec("acl", `{"tag":"acl"}`),
		spec("custom-high", `{"tag":"high"}`),
		spec("key-auth", `{"tag":"auth"}`),
	}, &Env{})
	if err != nil {
		t.Fatal(err)
	}
	c := &Context{}
	if err := ch.Run(PhaseAccess, c); err != nil {
		t.Fatal(err)
	}
	if got := trail(c); got != "auth;high;low;acl;last;" {
		t.Fatalf("order %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("After naming a non-built-in was accepted")
		}
	}()
	Register(&Definition{Name: "bad-anchor", After: "no-such-plugin", NewConfig: func() any { return nil }, New: func(any, *Env) (any, error) { return nil, nil }})
}

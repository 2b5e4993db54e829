package acl

import (
	"encoding/json"
	"errors"
	"testing"

	"portico.dev/portico/internal/plugin"
)

func build(t *testing.T, cfg string) *ACL {
	t.Helper()
	c, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return New(c.(*Config))
}

func status(err error) int {
	var r *plugin.Reply
	if errors.As(err, &r) {
		return r.Status
	}
	if err != nil {
		return -1
	}
	return 200
}

func TestAllowDeny(t *testing.T) {
	staff := &plugin.Consumer{Name: "alice", Groups: []string{"staff", "eu"}}
	guest := &plugin.Consumer{Name: "bob", Groups: []string{"guests"}}
	none := &plugin.Consumer{Name: "carol"}
	allow := build(t, `{"allow":["admins","staff"]}`)
	deny := build(t, `{"deny":["guests"]}`)
	for _, tc := range []struct {
		a    *ACL
		c    *plugin.Consumer
		want int
	}{
		{allow, staff, 200}, {allow, guest, 403}, {allow, none, 403}, {allow, nil, 401},
		{deny, staff, 200}, {deny, guest, 403}, {deny, none, 200}, {deny, nil, 401},
	} {
		if got := status(tc.a.Access(&plugin.Context{Consumer: tc.c})); got != tc.want {
			t.Fatalf("allow=%v consumer %v: %d, want %d", tc.a.allow, tc.c, got, tc.want)
		}
	}
	var r *plugin.Reply
	if errors.As(allow.Access(&plugin.Context{Consumer: guest}), &r); string(r.Body) !=
		`{"error":{"code":"forbidden","message":"you are not allowed to use this route"}}` {
		t.Fatalf("403 body %s", r.Body)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []string{`{}`, `{"allow":[],"deny":[]}`, `{"allow":["a"],"deny":["b"]}`, `{"allow":[""]}`, `{"groups":["a"]}`} {
		if _, err := plugin.DecodeConfig(Name, json.RawMessage(cfg)); err == nil {
			t.Fatalf("%s accepted", cfg)
		}
	}
}

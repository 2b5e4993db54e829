package denypath

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"portico.dev/portico/internal/plugin"
)

func TestThroughTheChain(t *testing.T) {
	ch, err := plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(`{"prefixes":["/admin"],"tag":"ok"}`)}}, &plugin.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()

	c := &plugin.Context{Request: httptest.NewRequest("GET", "/admin/users", nil)}
	var rep *plugin.Reply
	if err := ch.Run(plugin.PhaseAccess, c); !errors.As(err, &rep) || rep.Status != 403 {
		t.Fatalf("admin: %v", err)
	}
	c.Status, c.Header = rep.Status, rep.Header.Clone()
	if ch.Run(plugin.PhaseResponseHeaders, c); c.Header.Get("X-Deny-Path") != "" {
		t.Fatal("denied reply tagged")
	}

	c = &plugin.Context{Request: httptest.NewRequest("GET", "/public", nil)}
	if err := ch.Run(plugin.PhaseAccess, c); err != nil {
		t.Fatal(err)
	}
	c.Status, c.Header = 200, http.Header{}
	if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil || c.Header.Get("X-Deny-Path") != "ok" {
		t.Fatalf("err %v header %v", err, c.Header)
	}
}

func TestValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{}`:                               "prefixes",
		`{"prefixes":["admin"]}`:           "prefixes[0]",
		`{"prefixes":["/a"],"status":200}`: "status",
	} {
		var fe *plugin.FieldError
		if _, err := plugin.DecodeConfig(Name, json.RawMessage(cfg)); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v", cfg, err)
		}
	}
	if _, err := plugin.DecodeConfig(Name, json.RawMessage(`{"prefixes":["/a"],"typo":1}`)); err == nil {
		t.Error("unknown field accepted")
	}
}

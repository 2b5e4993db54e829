package ir

import (
	"encoding/json"
	"strings"
)

// secretKeys are plugin config keys whose values are never shown (compared
// case-insensitively): plugins keep credentials for the services they call under these
// names (a Redis password, an OIDC client secret).
var secretKeys = map[string]bool{
	"password": true, "secret": true, "token": true, "clientsecret": true, "apikey": true, "privatekey": true,
}

// redactPlugins returns specs whose configs have secret values replaced.
func redactPlugins(specs []PluginSpec) []PluginSpec {
	if len(specs) == 0 {
		return specs
	}
	out := make([]PluginSpec, len(specs))
	for i, s := range specs {
		out[i] = PluginSpec{Name: s.Name, Config: redactJSON(s.Config)}
	}
	return out
}

func redactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return json.RawMessage(`"<redacted>"`)
	}
	b, _ := json.Marshal(redactValue(v))
	return b
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if secretKeys[strings.ToLower(k)] {
				t[k] = "<redacted>"
			} else {
				t[k] = redactValue(val)
			}
		}
	case []any:
		for i, val := range t {
			t[i] = redactValue(val)
		}
	}
	return v
}

package ir

import "encoding/json"

// PluginSpec is one configured plugin: the name and its config as canonical JSON.
// Translation has validated the config against the plugin's schema.
type PluginSpec struct {
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config,omitempty"`
}

// Consumer is an API client: its credentials (secrets hashed) and the plugins attached to it.
type Consumer struct {
	Name        string       `json:"name"`
	Groups      []string     `json:"groups,omitempty"`
	Credentials []Credential `json:"credentials,omitempty"`
	Plugins     []PluginSpec `json:"plugins,omitempty"`
}

// Credential is one credential of a consumer. Passwords and keys never appear in plain
// text: key-auth carries "keyHash" (hex SHA-256 of the key), basic-auth "username" and
// "passwordHash" (bcrypt or argon2id). jwt-auth carries "key" and "secret" (HMAC) or
// "publicKey"; /debug redacts every credential field.
type Credential struct {
	Type   string            `json:"type"`
	Fields map[string]string `json:"fields"`
}

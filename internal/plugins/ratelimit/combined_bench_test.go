package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/keyauth"
)

// BenchmarkKeyAuthPlusRateLimit is the figure: key-auth identifies a consumer,
// then rate-limit counts by consumer; access and response headers per op.
func BenchmarkKeyAuthPlusRateLimit(b *testing.B) {
	sum := sha256.Sum256([]byte("alice-secret-key"))
	alice := &plugin.Consumer{Name: "alice", Credentials: []plugin.Credential{
		{Type: keyauth.CredentialType, Fields: map[string]string{"keyHash": hex.EncodeToString(sum[:])}}}}
	env := &plugin.Env{Consumers: plugin.NewConsumers([]*plugin.Consumer{alice})}
	ch, err := plugin.Build([]plugin.Spec{
		{Name: keyauth.Name, Config: json.RawMessage(`{"hideCredentials":false}`)},
		{Name: Name, Config: json.RawMessage(`{"requests":1000000000,"window":"1s","burst":1000,"key":"consumer"}`)},
	}, env)
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "http://x/private", nil)
	r.Header.Set("Apikey", "alice-secret-key")
	c, h := &plugin.Context{}, http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		c.Request, c.ClientIP, c.Route = r, "10.0.0.1", "private"
		if err := ch.Run(plugin.PhaseAccess, c); err != nil {
			b.Fatal(err)
		}
		c.Status, c.Header = 200, h
		if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
			b.Fatal(err)
		}
	}
}

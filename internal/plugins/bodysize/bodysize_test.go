package bodysize

import (
	"encoding/json"
	"errors"
	"io"
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

func TestDeclaredLengthOverMaxIs413(t *testing.T) {
	ch := build(t, `{"max":10}`)
	r, _ := http.NewRequest("POST", "http://x/", strings.NewReader("01234567890"))
	err := ch.Run(plugin.PhaseAccess, &plugin.Context{Request: r})
	var reply *plugin.Reply
	if !errors.As(err, &reply) || reply.Status != 413 || !strings.Contains(string(reply.Body), "body_too_large") {
		t.Fatalf("%v", err)
	}
	r, _ = http.NewRequest("POST", "http://x/", strings.NewReader("0123456789"))
	if err := ch.Run(plugin.PhaseAccess, &plugin.Context{Request: r}); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != "0123456789" {
		t.Fatal("body at the limit altered")
	}
}

// chunked hides the length of a body, as a chunked request does.
type chunked struct{ io.Reader }

func (chunked) Close() error { return nil }

func TestUnknownLengthIsCutAtMax(t *testing.T) {
	ch := build(t, `{"max":10}`)
	for body, wantErr := range map[string]bool{"0123456789": false, "0123456789x": true, "": false, strings.Repeat("y", 100000): true} {
		r, _ := http.NewRequest("POST", "http://x/", nil)
		r.Body, r.ContentLength = chunked{strings.NewReader(body)}, -1
		if err := ch.Run(plugin.PhaseAccess, &plugin.Context{Request: r}); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) != wantErr || len(got) > 10 {
			t.Fatalf("body %d bytes: read %d, err %v", len(body), len(got), err)
		}
		if wantErr && mbe.Limit != 10 {
			t.Fatal(mbe.Limit)
		}
		if _, err2 := r.Body.Read(make([]byte, 4)); wantErr && !errors.As(err2, &mbe) {
			t.Fatal("error must stick")
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []string{`{}`, `{"max":0}`, `{"max":-5}`} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		var fe *plugin.FieldError
		if !errors.As(err, &fe) || fe.Field != "max" {
			t.Errorf("%s: %v", cfg, err)
		}
	}
}

func BenchmarkAccessKnownLength(b *testing.B) {
	ch := build(b, `{"max":1048576}`)
	r, _ := http.NewRequest("POST", "http://x/", strings.NewReader("hello"))
	c := &plugin.Context{Request: r}
	b.ReportAllocs()
	for b.Loop() {
		if err := ch.Run(plugin.PhaseAccess, c); err != nil {
			b.Fatal(err)
		}
	}
}

package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigLookupOrder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "admin.token", "file-token\n")
	cfgPath := writeFile(t, dir, "client.yaml", "server: http://file:1\ntokenFile: admin.token\ncaFile: ca.crt\n")

	cases := []struct {
		name       string
		o          Overrides
		env        map[string]string
		server     string
		token, src string
	}{
		{"file only", Overrides{ConfigFile: cfgPath}, nil, "http://file:1", "file-token", cfgPath + " (tokenFile " + filepath.Join(dir, "admin.token") + ")"},
		{"env beats file", Overrides{ConfigFile: cfgPath}, map[string]string{EnvServer: "http://env:2", EnvToken: "env-token"}, "http://env:2", "env-token", EnvToken},
		{"flags beat env", Overrides{ConfigFile: cfgPath, Server: "https://flag:3", Token: "flag-token"},
			map[string]string{EnvServer: "http://env:2", EnvToken: "env-token"}, "https://flag:3", "flag-token", "--token"},
		{"file from env", Overrides{}, map[string]string{EnvConfig: cfgPath}, "http://file:1", "file-token", cfgPath + " (tokenFile " + filepath.Join(dir, "admin.token") + ")"},
		{"flag file beats env file", Overrides{ConfigFile: cfgPath}, map[string]string{EnvConfig: "/nonexistent/client.yaml"}, "http://file:1", "file-token", cfgPath + " (tokenFile " + filepath.Join(dir, "admin.token") + ")"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(tc.o, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Server != tc.server || cfg.Token != tc.token || cfg.TokenSource != tc.src {
				t.Fatalf("got server %q token %q source %q; want %q %q %q", cfg.Server, cfg.Token, cfg.TokenSource, tc.server, tc.token, tc.src)
			}
			if cfg.CAFile != filepath.Join(dir, "ca.crt") {
				t.Fatalf("caFile %q not resolved against the config folder", cfg.CAFile)
			}
		})
	}
}

func TestLoadConfigDefaultFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// No ./data/client.yaml: defaults, no token.
	cfg, err := LoadConfig(Overrides{}, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != DefaultServer || cfg.Token != "" || cfg.ConfigFile != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
	// With ./data/client.yaml and an inline token.
	if err := os.Mkdir("data", 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, "data", "client.yaml", "server: http://127.0.0.1:7000\ntoken: inline\n")
	cfg, err = LoadConfig(Overrides{}, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "http://127.0.0.1:7000" || cfg.Token != "inline" || cfg.TokenSource != DefaultConfigFile {
		t.Fatalf("default file: %+v", cfg)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file string
		o          Overrides
		want       string
	}{
		{"explicit file missing", "", Overrides{ConfigFile: filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"unknown field", "server: http://x:1\ntokn: a\n", Overrides{}, `unknown field "tokn"`},
		{"token and tokenFile", "token: a\ntokenFile: b\n", Overrides{}, "not both"},
		{"tokenFile missing", "tokenFile: missing.token\n", Overrides{}, "tokenFile"},
		{"bad server", "", Overrides{Server: "127.0.0.1:9080"}, "want http://HOST:PORT"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			if tc.file != "" {
				o.ConfigFile = writeFile(t, dir, "c"+string(rune('a'+i))+".yaml", tc.file)
			}
			if o.ConfigFile == "" {
				o.ConfigFile = writeFile(t, dir, "empty.yaml", "")
			}
			_, err := LoadConfig(o, envOf(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestResolveKind(t *testing.T) {
	for in, want := range map[string]string{"route": "Route", "Routes": "Route", "STREAMROUTE": "StreamRoute",
		"streamroutes": "StreamRoute", "plugins": "Plugin", "gateway": "Gateway", "certificates": "Certificate"} {
		got, err := ResolveKind(in)
		if err != nil || got != want {
			t.Errorf("ResolveKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"rt", "routez", "cluster", ""} {
		if _, err := ResolveKind(in); err == nil || !strings.Contains(err.Error(), "one of gateway") {
			t.Errorf("ResolveKind(%q) = %v; want an error listing the kinds", in, err)
		}
	}
	if Plural("StreamRoute") != "streamroutes" {
		t.Fatal(Plural("StreamRoute"))
	}
}

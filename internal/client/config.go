// Package client is the command-line client of Portico's admin API: where to find the
// server and its token (flags, environment, client.yaml), and typed calls that turn the
// API's error envelope into Go errors naming the code, object and field.
package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// DefaultServer is the admin API's default address (see `portico run --admin-addr`).
const DefaultServer = "http://127.0.0.1:9080"

// DefaultConfigFile is read when neither --client-config nor PORTICO_CONFIG names a
// file and it exists.
const DefaultConfigFile = "data/client.yaml"

// Environment variables the client reads.
const (
	EnvServer = "PORTICO_SERVER"
	EnvToken  = "PORTICO_TOKEN"
	EnvConfig = "PORTICO_CONFIG"
)

// File is the shape of client.yaml, written by `portico init` and `portico run`.
type File struct {
	// Server is the admin API base URL, without /api/v1.
	Server string `json:"server,omitempty"`
	// Token is the bearer token itself; TokenFile names a file holding it instead.
	Token string `json:"token,omitempty"`
	// TokenFile is relative to the folder of client.yaml.
	TokenFile string `json:"tokenFile,omitempty"`
	// CAFile verifies an https server; relative to the folder of client.yaml.
	CAFile string `json:"caFile,omitempty"`
}

// Overrides are the command-line flags; empty fields are not set.
type Overrides struct {
	// Server is --server.
	Server string
	// Token is --token.
	Token string
	// ConfigFile is --client-config.
	ConfigFile string
}

// Config is the resolved client configuration.
type Config struct {
	// Server is the admin API base URL (scheme and host, perhaps a path prefix).
	Server string
	// Token is the bearer token; empty sends no Authorization header.
	Token string
	// CAFile, when set, is the only CA trusted for an https server.
	CAFile string
	// TokenSource says where Token came from ("--token", "PORTICO_TOKEN",
	// "data/client.yaml"), or is empty when there is no token; error messages use it.
	TokenSource string
	// ConfigFile is the client.yaml that was read, if any.
	ConfigFile string
}

// LoadConfig resolves the configuration. Each setting is taken from the first place
// that sets it: the flags (o), then the environment (getenv, os.Getenv when nil:
// PORTICO_SERVER, PORTICO_TOKEN), then client.yaml — the file named by o.ConfigFile or
// PORTICO_CONFIG (which must exist), else ./data/client.yaml when it exists — and
// finally DefaultServer. Paths inside client.yaml are relative to its folder.
func LoadConfig(o Overrides, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := &Config{}
	file, path, err := readConfigFile(o.ConfigFile, getenv(EnvConfig))
	if err != nil {
		return nil, err
	}
	cfg.ConfigFile = path
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}

	cfg.Server = firstNonEmpty(o.Server, getenv(EnvServer), file.Server, DefaultServer)
	switch {
	case o.Token != "":
		cfg.Token, cfg.TokenSource = o.Token, "--token"
	case getenv(EnvToken) != "":
		cfg.Token, cfg.TokenSource = strings.TrimSpace(getenv(EnvToken)), EnvToken
	case file.Token != "":
		cfg.Token, cfg.TokenSource = file.Token, path
	case file.TokenFile != "":
		tf := rel(file.TokenFile)
		b, err := os.ReadFile(tf)
		if err != nil {
			return nil, fmt.Errorf("%s: tokenFile: %w", path, err)
		}
		cfg.Token = strings.TrimSpace(string(b))
		if cfg.Token == "" {
			return nil, fmt.Errorf("%s: tokenFile: %s is empty", path, tf)
		}
		cfg.TokenSource = path + " (tokenFile " + tf + ")"
	}
	cfg.CAFile = rel(file.CAFile)
	if err := checkServer(cfg.Server); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readConfigFile reads the explicit file (flag, then env) or the default one if it
// exists. It returns an empty File and path when there is none.
func readConfigFile(flag, env string) (File, string, error) {
	path, explicit := flag, true
	if path == "" {
		path = env
	}
	if path == "" {
		path, explicit = DefaultConfigFile, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return File{}, "", nil
		}
		return File{}, "", fmt.Errorf("client config: %w", err)
	}
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return File{}, "", fmt.Errorf("client config %s: %w", path, err)
	}
	if f.Token != "" && f.TokenFile != "" {
		return File{}, "", fmt.Errorf("client config %s: set token or tokenFile, not both", path)
	}
	return f, path, nil
}

// checkServer accepts http and https URLs with a host.
func checkServer(s string) error {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.HasPrefix(rest, "/") {
		return fmt.Errorf("server %q: want http://HOST:PORT or https://HOST:PORT", s)
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"portico.dev/portico/internal/distribute"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/pipeline"
	"portico.dev/portico/internal/pki"
)

// remoteFlags configure a data plane fed by a control plane.
type remoteFlags struct {
	controlPlane string
	certs        string
	labels       map[string]string
	id           string
	dataDir      string
	bootstrap    string
}

func (r *remoteFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&r.controlPlane, "control-plane", "", "control plane distribution address (host:port); the data plane then takes its configuration from it over mTLS")
	fl.StringVar(&r.certs, "certs", "./data", "folder with ca.crt and this data plane's dataplane.crt/dataplane.key (from `portico init`)")
	fl.StringToStringVar(&r.labels, "labels", nil, "labels announced to the control plane: gateway=NAME[+NAME] selects what it serves; cluster, zone, version (default: this binary's) describe it")
	fl.StringVar(&r.id, "id", "", "data plane ID shown by the control plane (default hostname-pid)")
	fl.StringVar(&r.dataDir, "data-dir", "./data", "folder for the last good snapshot (dataplane-snapshot.json)")
	fl.StringVar(&r.bootstrap, "bootstrap-token-file", "", "when dataplane.crt is missing: a bootstrap token file with which to obtain a certificate from the control plane")
}

// source connects to the control plane: it serves the cached snapshot at once, then
// every snapshot the control plane sends, reconnecting with backoff.
func (r *remoteFlags) source() dataPlaneSource {
	return func(ctx context.Context, pipe *pipeline.Pipeline, dp pipeline.Applier, logger *slog.Logger) error {
		certFile := filepath.Join(r.certs, pki.DataPlaneCertFile)
		keyFile := filepath.Join(r.certs, pki.DataPlaneKeyFile)
		caFile := filepath.Join(r.certs, pki.CACertFile)
		if err := r.ensureCertificate(ctx, certFile, keyFile, caFile, logger); err != nil {
			return err
		}
		host, _, err := net.SplitHostPort(r.controlPlane)
		if err != nil {
			return fmt.Errorf("--control-plane %q: %w", r.controlPlane, err)
		}
		if host == "" {
			host = "localhost"
		}
		tlsConf, err := pki.ClientTLS(certFile, keyFile, caFile, host)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(r.dataDir, 0o700); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		cache := filepath.Join(r.dataDir, "dataplane-snapshot.json")
		labels := maps.Clone(r.labels)
		if labels == nil {
			labels = map[string]string{}
		}
		if _, ok := labels["version"]; !ok {
			labels["version"] = Version
		}
		logger.Info("portico data plane starting", "controlPlane", r.controlPlane, "labels", labels, "cache", cache)
		return distribute.RunClient(ctx, distribute.ClientOptions{
			Address: r.controlPlane, TLS: tlsConf, ID: r.id, Labels: labels, CacheFile: cache,
			Apply:  func(s *ir.Snapshot) error { return pipe.Apply(dp, s) },
			Logger: logger,
		})
	}
}

// ensureCertificate obtains a client certificate with the bootstrap token when there is none.
func (r *remoteFlags) ensureCertificate(ctx context.Context, certFile, keyFile, caFile string, logger *slog.Logger) error {
	if _, err := os.Stat(certFile); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if r.bootstrap == "" {
		return fmt.Errorf("%s does not exist: run `portico init` and copy dataplane.crt, dataplane.key and ca.crt into --certs, or pass --bootstrap-token-file", certFile)
	}
	token, err := pki.ReadToken(r.bootstrap)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("the bootstrap needs the control plane's CA: %w", err)
	}
	name := r.id
	if name == "" {
		host, _ := os.Hostname()
		name = strings.TrimSpace(host) + "-" + fmt.Sprint(os.Getpid())
	}
	if err := distribute.Bootstrap(ctx, r.controlPlane, caPEM, token, certFile, keyFile, name); err != nil {
		return fmt.Errorf("bootstrap at %s: %w", r.controlPlane, err)
	}
	logger.Info("obtained a data-plane certificate with the bootstrap token", "cert", certFile, "name", name)
	return nil
}

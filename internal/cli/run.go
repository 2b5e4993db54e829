package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"portico.dev/portico/examples"
	"portico.dev/portico/internal/echo"
	"portico.dev/portico/internal/pipeline"
	"portico.dev/portico/internal/pki"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
)

// newRunCmd is the quick start: control plane (admin API, SQLite store, distribution
// server), data plane and the demo backends in one process.
func newRunCmd() *cobra.Command {
	var f dataPlaneFlags
	var cf controlFlags
	var demo []string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run everything in one process (quick start): admin API, store, gateway and demo backends",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.config != "" {
				return errors.New("`portico run` keeps its configuration in the store: load files with `portico apply -f " + f.config + "` (or serve files alone with `portico proxy --config`)")
			}
			logger, err := newLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
			if err != nil {
				return err
			}
			if len(demo) > 0 {
				backends, err := echo.Start(demo)
				if err != nil {
					return fmt.Errorf("demo backends %s: %w (use --demo-backends='' to run without them)", strings.Join(demo, ","), err)
				}
				defer backends.Close()
			}
			cp, err := startControlPlane(ctx, &cf, logger, seedQuickstart(cf.dataDir))
			if err != nil {
				return err
			}
			defer cp.close()
			token, err := pki.ReadToken(cp.tokenFile)
			if err != nil {
				return err
			}
			return runDataPlane(ctx, cmd.ErrOrStderr(), &f, localSource(cp), func() {
				fmt.Fprintf(cmd.ErrOrStderr(), "\nPortico is running\n  try:       curl -s http://localhost:8080/echo/hello\n  admin API: %s\n  token:     %s  (in %s)\n  cli:       portico get routes   (reads %s)\n  ops:       http://%s/debug/config\n\n",
					adminURL(cp.adminAddr), token, cp.tokenFile, filepath.Join(cp.certs, pki.ClientConfigFile), f.opsAddr)
			})
		},
	}
	f.register(cmd)
	cf.register(cmd, ":9443")
	_ = cmd.Flags().MarkHidden("config")
	_ = cmd.Flags().MarkHidden("reload-debounce")
	cmd.Flags().StringSliceVar(&demo, "demo-backends", []string{"127.0.0.1:9001", "127.0.0.1:9002"}, "addresses for the bundled echo backends ('' for none)")
	return cmd
}

// localSource feeds the in-process data plane from the control plane's full snapshot.
func localSource(cp *runningControlPlane) dataPlaneSource {
	return func(ctx context.Context, pipe *pipeline.Pipeline, dp pipeline.Applier, _ *slog.Logger) error {
		go pipe.RunDataPlane(ctx, dp)
		publish := func() {
			if s, err := cp.state.Snapshot(nil); err == nil && s != nil {
				pipe.Snapshots.Publish(s)
			}
		}
		cp.state.OnChange(publish)
		publish()
		<-ctx.Done()
		return nil
	}
}

// seedQuickstart loads the embedded quick start into an empty store.
func seedQuickstart(dataDir string) func(context.Context, store.Store) error {
	return func(ctx context.Context, st store.Store) error {
		path, err := examples.WriteQuickstart(filepath.Join(dataDir, "quickstart"))
		if err != nil {
			return err
		}
		res, err := resource.Load(path)
		if err != nil {
			return err
		}
		ops, err := storeOps(res)
		if err != nil {
			return err
		}
		_, err = st.Apply(store.WithActor(ctx, "quickstart"), ops)
		return err
	}
}

// storeOps turns every object of res into a put.
func storeOps(res *resource.Resources) ([]store.Op, error) {
	var ops []store.Op
	for _, o := range res.Objects() {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.Op{Object: b})
	}
	return ops, nil
}

package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"portico.dev/portico/examples"
	"portico.dev/portico/internal/echo"
)

// newRunCmd is the quick start: the data plane plus the demo backends in one process.
// (The control plane and admin API join `run` with the control-plane work.)
func newRunCmd() *cobra.Command {
	var f dataPlaneFlags
	var dataDir string
	var demo []string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run everything in one process (quick start): the gateway and the demo backends",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.config == "" {
				path, err := examples.WriteQuickstart(filepath.Join(dataDir, "quickstart"))
				if err != nil {
					return fmt.Errorf("writing the quick start into %s: %w", dataDir, err)
				}
				f.config = path
				fmt.Fprintf(cmd.ErrOrStderr(), "no --config: using the built-in quick start, written to %s (edit it: Portico reloads)\n", path)
			}
			if len(demo) > 0 {
				backends, err := echo.Start(demo)
				if err != nil {
					return fmt.Errorf("demo backends %s: %w (use --demo-backends='' to run without them)", strings.Join(demo, ","), err)
				}
				defer backends.Close()
			}
			return runDataPlane(ctx, cmd.ErrOrStderr(), &f, func() {
				fmt.Fprintf(cmd.ErrOrStderr(), "\nPortico is serving %s\n  try: curl -s http://localhost:8080/echo/hello\n  ops: http://%s/debug/config\n\n", f.config, f.opsAddr)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory (the quick start is written here)")
	cmd.Flags().StringSliceVar(&demo, "demo-backends", []string{"127.0.0.1:9001", "127.0.0.1:9002"}, "addresses for the bundled echo backends ('' for none)")
	return cmd
}

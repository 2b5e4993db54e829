package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"portico.dev/portico/internal/echo"
)

func newEchoCmd() *cobra.Command {
	var addrs []string
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Run the demo backend: answers every request with JSON describing it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.ErrOrStderr(), "echo backend listening on %v\n", addrs)
			return echo.Serve(cmd.Context(), addrs)
		},
	}
	cmd.Flags().StringSliceVar(&addrs, "listen", []string{"127.0.0.1:9001"}, "addresses to listen on (repeat or comma-separate)")
	return cmd
}

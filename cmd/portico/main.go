// Command portico is the Portico API gateway: one binary for the data plane, the
// control plane and their tools.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"portico.dev/portico/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Execute(ctx, os.Args[1:]))
}

// Command portico is the Portico API gateway: one binary for the data plane, the
// control plane and their tools.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"portico.dev/portico/internal/cli"
	// The built-in plugins; a custom binary adds its own plugin packages here.
	_ "portico.dev/portico/internal/plugins/all"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Execute(ctx, os.Args[1:]))
}

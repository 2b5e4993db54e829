// Command custom-plugin is a custom Portico binary: the normal portico command line
// with every built-in plugin, plus the example "deny-path" plugin (package denypath).
//
//	go build -o portico-custom ./examples/custom-plugin
//	./portico-custom proxy --config gateway.yaml
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"portico.dev/portico/internal/cli"
	// The built-in plugins.
	_ "portico.dev/portico/internal/plugins/all"

	// The custom plugin: importing it registers "deny-path".
	_ "portico.dev/portico/examples/custom-plugin/denypath"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Execute(ctx, os.Args[1:]))
}

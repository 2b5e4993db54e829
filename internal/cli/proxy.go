package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/ops"
	"portico.dev/portico/internal/pipeline"
	"portico.dev/portico/internal/provider/file"
	"portico.dev/portico/internal/proxy"
	"portico.dev/portico/internal/resource"
)

// dataPlaneFlags are shared by `proxy` and `run`.
type dataPlaneFlags struct {
	config       string
	opsAddr      string
	accessLog    string
	logLevel     string
	logFormat    string
	drainTimeout time.Duration
	debounce     time.Duration
	// listenAddress binds listeners that name no address to this IP.
	listenAddress string
}

func (f *dataPlaneFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "configuration file or folder (YAML/JSON), watched for changes")
	fl.StringVar(&f.opsAddr, "ops-addr", "127.0.0.1:9901", "address for /healthz, /readyz, /metrics and /debug")
	fl.StringVar(&f.accessLog, "access-log", "stdout", `access log: "stdout", "off", or a file path (appended)`)
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 15*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
	fl.DurationVar(&f.debounce, "reload-debounce", file.DefaultDebounce, "quiet time after a file change before reloading")
	fl.StringVar(&f.listenAddress, "listen-address", "", "bind Gateway listeners that set no address to this IP instead of all addresses (several data planes on one host)")
}

// boundTo applies snapshots with every listener that sets no address bound to addr.
type boundTo struct {
	dp   pipeline.Applier
	addr string
}

func (b boundTo) Apply(s *ir.Snapshot) error {
	c := *s
	c.Listeners = slices.Clone(s.Listeners)
	for i := range c.Listeners {
		if c.Listeners[i].Address == "" {
			c.Listeners[i].Address = b.addr
		}
	}
	return b.dp.Apply(&c)
}

func newProxyCmd() *cobra.Command {
	var f dataPlaneFlags
	var r remoteFlags
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the data plane: from a control plane (--control-plane) or a configuration file or folder (--config)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case r.controlPlane != "" && f.config != "":
				return errors.New("--config and --control-plane exclude each other: a data plane has one source")
			case r.controlPlane != "":
				return runDataPlane(cmd.Context(), cmd.ErrOrStderr(), &f, r.source(), nil)
			case f.config == "":
				return errors.New("--config (a file or folder of Portico resources) or --control-plane ADDR is required")
			}
			return runDataPlane(cmd.Context(), cmd.ErrOrStderr(), &f, fileSource(&f), nil)
		},
	}
	f.register(cmd)
	r.register(cmd)
	return cmd
}

// dataPlaneSource feeds a data plane until ctx ends; it returns an error only when it
// cannot work at all.
type dataPlaneSource func(ctx context.Context, pipe *pipeline.Pipeline, dp pipeline.Applier, logger *slog.Logger) error

// fileSource watches f.config (and SIGHUP) and runs the translator.
func fileSource(f *dataPlaneFlags) dataPlaneSource {
	return func(ctx context.Context, pipe *pipeline.Pipeline, dp pipeline.Applier, logger *slog.Logger) error {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		reload := make(chan struct{}, 1)
		go func() {
			for range hup {
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}()
		provider := &file.Provider{
			Path: f.config, Debounce: f.debounce, Logger: logger, Reload: reload,
			Publish: func(res *resource.Resources) { pipe.Resources.Publish(res) },
			Reject:  func(err error) { pipe.Reject("load", err) },
		}
		go pipe.RunTranslator(ctx)
		go pipe.RunDataPlane(ctx, dp)
		logger.Info("portico data plane starting", "config", f.config)
		if err := provider.Run(ctx); err != nil {
			return fmt.Errorf("watching %s: %w", f.config, err)
		}
		return nil
	}
}

// runDataPlane serves the ops endpoints and the data plane fed by source, and drains on
// shutdown. ready, when set, is called once the first snapshot is live.
func runDataPlane(ctx context.Context, stderr io.Writer, f *dataPlaneFlags, source dataPlaneSource, ready func()) error {
	logger, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	accessOut, closeAccess, err := openAccessLog(f.accessLog)
	if err != nil {
		return err
	}
	defer closeAccess()

	metrics := observe.NewMetrics()
	var accessLog *observe.AccessLog
	if accessOut != nil {
		accessLog = observe.NewAccessLog(accessOut)
		defer accessLog.Close()
	}
	rt := proxy.New(proxy.Options{Logger: logger, AccessLog: accessLog, Metrics: metrics, DrainTimeout: f.drainTimeout})

	pipe := pipeline.New(true, logger, pipeline.Hooks{
		Applied:  func(version string) { metrics.ReloadSucceeded(version) },
		Rejected: func(string, error) { metrics.ReloadFailed() },
	})

	opsLn, err := net.Listen("tcp", f.opsAddr)
	if err != nil {
		return fmt.Errorf("--ops-addr %s: %w", f.opsAddr, err)
	}
	opsSrv := &http.Server{Handler: ops.Handler(ops.Sources{
		Ready: func() bool { return rt.Snapshot() != nil },
		Config: func() any {
			if s := rt.Snapshot(); s != nil {
				return s.Redacted()
			}
			return nil
		},
		Reload:    func() any { return pipe.State() },
		Upstreams: func() any { return rt.UpstreamHealth() },
		Gatherer:  metrics.Registry,
	}), ReadHeaderTimeout: 10 * time.Second}
	go opsSrv.Serve(opsLn)
	defer opsSrv.Close()
	logger.Info("ops endpoints", "addr", opsLn.Addr().String())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	srcErr := make(chan error, 1)
	var dp pipeline.Applier = rt
	if f.listenAddress != "" {
		dp = boundTo{rt, f.listenAddress}
	}
	go func() { srcErr <- source(runCtx, pipe, dp, logger) }()
	if ready != nil {
		go waitReady(runCtx, rt, ready)
	}
	select {
	case <-ctx.Done():
	case err := <-srcErr:
		if err != nil {
			return err
		}
		<-ctx.Done()
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", f.drainTimeout)
	cancel()
	drainCtx, drainCancel := context.WithTimeout(context.Background(), f.drainTimeout)
	defer drainCancel()
	if err := rt.Shutdown(drainCtx); err != nil {
		logger.Warn("drain ended before all requests finished", "error", err)
	}
	logger.Info("stopped")
	return nil
}

func waitReady(ctx context.Context, rt *proxy.Runtime, ready func()) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if rt.Snapshot() != nil {
			ready()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func openAccessLog(spec string) (io.Writer, func(), error) {
	switch spec {
	case "off", "":
		return nil, func() {}, nil
	case "stdout":
		return os.Stdout, func() {}, nil
	case "stderr":
		return os.Stderr, func() {}, nil
	}
	fh, err := os.OpenFile(spec, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("--access-log: %w", err)
	}
	return fh, func() { fh.Close() }, nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

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
}

func newProxyCmd() *cobra.Command {
	var f dataPlaneFlags
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the data plane from a configuration file or folder",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.config == "" {
				return errors.New("--config is required (a file or folder of Portico resources)")
			}
			return runDataPlane(cmd.Context(), cmd.ErrOrStderr(), &f, nil)
		},
	}
	f.register(cmd)
	return cmd
}

// runDataPlane wires file provider → translator → data plane, serves the ops endpoints,
// and drains on shutdown. ready, when set, is called once the first snapshot is live.
func runDataPlane(ctx context.Context, stderr io.Writer, f *dataPlaneFlags, ready func()) error {
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

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	provider := &file.Provider{
		Path: f.config, Debounce: f.debounce, Logger: logger, Reload: reload,
		Publish: func(res *resource.Resources) { pipe.Resources.Publish(res) },
		Reject:  func(err error) { pipe.Reject("load", err) },
	}
	go pipe.RunTranslator(runCtx)
	go pipe.RunDataPlane(runCtx, rt)
	watchErr := make(chan error, 1)
	go func() { watchErr <- provider.Run(runCtx) }()

	logger.Info("portico data plane starting", "config", f.config, "ops", opsLn.Addr().String())
	if ready != nil {
		go waitReady(runCtx, rt, ready)
	}
	select {
	case <-ctx.Done():
	case err := <-watchErr:
		if err != nil {
			return fmt.Errorf("watching %s: %w", f.config, err)
		}
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

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"portico.dev/portico/internal/admin"
	"portico.dev/portico/internal/controlplane"
	"portico.dev/portico/internal/distribute"
	"portico.dev/portico/internal/kube/convert"
	"portico.dev/portico/internal/pki"
	kubesource "portico.dev/portico/internal/provider/kubernetes"
	storesource "portico.dev/portico/internal/provider/store"
	"portico.dev/portico/internal/resource"
	"portico.dev/portico/internal/store"
	"portico.dev/portico/internal/translate"
)

// controlFlags configure a control plane (`portico control` and `portico run`).
type controlFlags struct {
	dataDir   string
	storeDSN  string
	adminAddr string
	xdsAddr   string
	certs     string
	hosts     []string
	logLevel  string
	logFormat string

	// Kubernetes source (off without kubeconfig).
	kubeconfig         string
	kubeAddresses      []string
	kubeLeaderElection bool
}

func (f *controlFlags) register(cmd *cobra.Command, xdsDefault string) {
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "./data", "data directory: embedded store, PKI, admin token")
	fl.StringVar(&f.storeDSN, "store", "", "store: a postgres:// DSN selects PostgreSQL (default SQLite at <data-dir>/portico.db)")
	fl.StringVar(&f.adminAddr, "admin-addr", pki.DefaultAdminAddr, "admin API address")
	fl.StringVar(&f.xdsAddr, "xds-addr", xdsDefault, "address data planes connect to (gRPC over mTLS); empty to disable")
	fl.StringVar(&f.certs, "certs", "", "PKI folder from `portico init` (default <data-dir>; created when missing)")
	fl.StringSliceVar(&f.hosts, "hosts", nil, "extra names or IPs for the control-plane certificate when it is created")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of a cluster whose Ingresses and Gateway API objects become routes (docs/kubernetes.md); empty: no Kubernetes source")
	fl.StringSliceVar(&f.kubeAddresses, "kube-address", nil, "data-plane address (IP or hostname) written to Ingress and Gateway statuses (with --kubeconfig)")
	fl.BoolVar(&f.kubeLeaderElection, "kube-leader-election", false, "with --kubeconfig: only the replica holding a Lease writes Kubernetes statuses")
}

// registerLogFlags adds the log flags for commands that do not share dataPlaneFlags.
func (f *controlFlags) registerLogFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "text or json")
}

func newControlCmd() *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Run the control plane: admin API, store, translator and the distribution server data planes connect to",
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
			if err != nil {
				return err
			}
			cp, err := startControlPlane(cmd.Context(), &f, logger, nil)
			if err != nil {
				return err
			}
			defer cp.close()
			fmt.Fprintf(cmd.ErrOrStderr(), "\nPortico control plane\n  admin API: http://%s/api/v1  (token in %s)\n  data planes connect to %s with the certificates in %s\n\n",
				cp.adminAddr, cp.tokenFile, cp.xdsAddr, cp.certs)
			<-cmd.Context().Done()
			return nil
		},
	}
	f.register(cmd, ":9443")
	f.registerLogFlags(cmd)
	return cmd
}

// runningControlPlane is a started control plane.
type runningControlPlane struct {
	state     *controlplane.ControlPlane
	store     store.Store
	dist      *distribute.Server
	adminAddr string
	xdsAddr   string
	certs     string
	tokenFile string
	close     func()
}

// startControlPlane creates the PKI when missing, opens and migrates the store, seeds it
// (seed may be nil; it runs only on an empty store), and starts the store source, the
// admin API and the distribution server. It returns once every listener is bound.
func startControlPlane(ctx context.Context, f *controlFlags, logger *slog.Logger, seed func(context.Context, store.Store) error) (_ *runningControlPlane, err error) {
	certs := f.certs
	if certs == "" {
		certs = f.dataDir
	}
	initRes, err := pki.Init(certs, pki.InitOptions{Hosts: f.hosts, AdminAddr: f.adminAddr})
	if err != nil {
		return nil, err
	}
	for _, w := range initRes.Warnings {
		logger.Warn("pki", "warning", w)
	}
	if initRes.Changed() {
		logger.Info("created the PKI and tokens", "dir", certs)
	}
	token, err := pki.ReadToken(initRes.AdminTokenFile)
	if err != nil {
		return nil, err
	}
	var kubeConfig *rest.Config
	if f.kubeconfig != "" {
		if kubeConfig, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig); err != nil {
			return nil, fmt.Errorf("--kubeconfig: %w", err)
		}
	}

	dsn := f.storeDSN
	if dsn == "" {
		dsn = filepath.Join(f.dataDir, "portico.db")
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	closers = append(closers, func() { st.Close() })
	if applied, err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrating the %s store: %w", st.Driver(), err)
	} else if len(applied) > 0 {
		logger.Info("store migrated", "driver", st.Driver(), "versions", applied)
	}
	if seed != nil {
		if err := seedIfEmpty(ctx, st, seed); err != nil {
			return nil, err
		}
	}

	cp := controlplane.New(logger)
	sources := controlplane.NewSources(cp, controlplane.SourceStore, controlplane.SourceKubernetes)
	running := &runningControlPlane{state: cp, store: st, certs: certs, tokenFile: initRes.AdminTokenFile}
	runCtx, cancel := context.WithCancel(ctx)
	closers = append(closers, cancel)

	if f.xdsAddr != "" {
		if err := running.startDistribution(f.xdsAddr, certs, logger); err != nil {
			return nil, err
		}
		closers = append(closers, running.dist.Stop)
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	handler, err := admin.New(admin.Options{
		Store: st, AdminToken: token, Current: sources.ResourcesAt, Statuses: running.statuses, DataPlanes: running.dataPlanes,
		Registry: registry, Gatherer: registry, Ready: cp.Ready, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	adminLn, err := net.Listen("tcp", f.adminAddr)
	if err != nil {
		return nil, fmt.Errorf("--admin-addr %s: %w", f.adminAddr, err)
	}
	adminSrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go adminSrv.Serve(adminLn)
	closers = append(closers, func() { adminSrv.Close() })
	running.adminAddr = adminLn.Addr().String()

	source := &storesource.Provider{Store: st, Logger: logger,
		Publish: func(res *resource.Resources, rev int64) { sources.Update(controlplane.SourceStore, res, rev) },
		Reject:  func(err error) { logger.Warn("store unavailable; serving the last state", "error", err) }}
	go source.Run(runCtx)
	if kubeConfig != nil {
		kube := &kubesource.Provider{Config: kubeConfig, Options: convert.Options{Addresses: f.kubeAddresses},
			Publish: sources.Publisher(controlplane.SourceKubernetes), Logger: logger, LeaderElection: f.kubeLeaderElection}
		go func() {
			if err := kube.Run(runCtx); err != nil {
				logger.Error("kubernetes source stopped", "error", err)
			}
		}()
		logger.Info("kubernetes source started", "kubeconfig", f.kubeconfig, "server", kubeConfig.Host)
	}

	running.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	logger.Info("control plane started", "admin", running.adminAddr, "xds", running.xdsAddr, "store", st.Driver())
	return running, nil
}

// startDistribution serves data planes over mTLS with the PKI in certs.
func (r *runningControlPlane) startDistribution(addr, certs string, logger *slog.Logger) error {
	tlsConf, err := pki.ServerTLS(filepath.Join(certs, pki.ControlPlaneCertFile), filepath.Join(certs, pki.ControlPlaneKeyFile), filepath.Join(certs, pki.CACertFile))
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(certs)
	if err != nil {
		return err
	}
	bootstrap, err := pki.ReadToken(filepath.Join(certs, pki.BootstrapTokenFile))
	if err != nil {
		return err
	}
	r.dist = distribute.NewServer(distribute.ServerOptions{
		TLS: tlsConf, Snapshot: r.state.Snapshot, BootstrapToken: bootstrap,
		Sign:   func(csr []byte) ([]byte, error) { return ca.SignCSR(csr, 365*24*time.Hour) },
		Logger: logger,
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--xds-addr %s: %w", addr, err)
	}
	r.xdsAddr = ln.Addr().String()
	r.state.OnChange(r.dist.Notify)
	go func() {
		if err := r.dist.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			logger.Error("distribution server stopped", "error", err)
		}
	}()
	return nil
}

// statuses are the translation statuses with the standing nacks of connected data planes.
func (r *runningControlPlane) statuses() translate.Statuses {
	var nacks []controlplane.Nack
	if r.dist != nil {
		for _, dp := range r.dist.DataPlanes() {
			if n := dp.LastNack; n != nil && n.Version != dp.AckedVersion {
				nacks = append(nacks, controlplane.NackFor(dp.ID, dp.Labels, n.Version, n.Error, n.Time))
			}
		}
	}
	return r.state.Statuses(nacks)
}

func (r *runningControlPlane) dataPlanes() any {
	if r.dist == nil {
		return []distribute.DataPlane{}
	}
	return r.dist.DataPlanes()
}

// seedIfEmpty runs seed when the store holds no objects and has never been written.
func seedIfEmpty(ctx context.Context, st store.Store, seed func(context.Context, store.Store) error) error {
	rev, err := st.Revision(ctx)
	if err != nil {
		return err
	}
	if rev != 0 {
		return nil
	}
	if err := seed(ctx, st); err != nil {
		return fmt.Errorf("loading the quick start into the store: %w", err)
	}
	return nil
}

// adminURL renders the admin API base for messages.
func adminURL(addr string) string {
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	return "http://" + addr + "/api/v1"
}

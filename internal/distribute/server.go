package distribute

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"portico.dev/portico/internal/ir"
)

// SnapshotFunc returns the snapshot for a data plane with the given labels. It is provided
// by the control plane, which selects the gateways the labels name. The snapshot's Version
// must be ir's ComputeVersion of its content, or empty (the server then computes it).
// The returned snapshot is treated as read-only.
type SnapshotFunc func(labels map[string]string) (*ir.Snapshot, error)

// ServerOptions configure the control-plane side.
type ServerOptions struct {
	// TLS holds the server certificate and the ClientCAs that data-plane certificates
	// must chain to. ClientAuth should be tls.VerifyClientCertIfGiven (the default when
	// left at NoClientCert) so that Bootstrap works without a client certificate.
	TLS      *tls.Config
	Snapshot SnapshotFunc
	// BootstrapToken enables the Bootstrap RPC (CSR → certificate), the only call allowed
	// without a client certificate.
	BootstrapToken string
	// Sign turns a PEM CSR into a PEM client certificate for Bootstrap.
	Sign func(csrPEM []byte) (certPEM []byte, err error)
	// CAPEM is returned by Bootstrap next to the certificate; optional.
	CAPEM []byte
	// Heartbeat is the interval data planes send heartbeats at (default 5s); three
	// missed ones mark a data plane stale.
	Heartbeat time.Duration
	// Grace is how long a stale data plane is kept before its stream is closed
	// (default 3 × Heartbeat).
	Grace time.Duration
	// AckTimeout bounds the wait for the ack of a push before the next push is sent as
	// a full snapshot (default 1m).
	AckTimeout time.Duration
	// OnNack is called when a data plane rejects a version; may be nil.
	OnNack func(dp DataPlane, version string, err string)
	Logger *slog.Logger
}

// DataPlane describes one connected data plane.
type DataPlane struct {
	ID     string            `json:"id"`
	Labels map[string]string `json:"labels,omitempty"`
	// Address is the peer address of the stream.
	Address string `json:"address"`
	// CommonName is the CN of the verified client certificate.
	CommonName    string    `json:"commonName"`
	ConnectedAt   time.Time `json:"connectedAt"`
	LastHeartbeat time.Time `json:"lastHeartbeat,omitzero"`
	// AckedVersion is the version the data plane runs, as acked (or announced in Hello).
	AckedVersion string `json:"ackedVersion,omitempty"`
	// SentVersion is the last version pushed to it.
	SentVersion string    `json:"sentVersion,omitempty"`
	LastNack    *NackInfo `json:"lastNack,omitempty"`
	// Stale is set after three missed heartbeats.
	Stale bool `json:"stale"`
}

// NackInfo is the last version a data plane rejected, and why.
type NackInfo struct {
	Version string    `json:"version"`
	Error   string    `json:"error"`
	Time    time.Time `json:"time"`
}

// Server is the control-plane end of the distribution stream.
type Server struct {
	opts ServerOptions
	log  *slog.Logger
	grpc *grpc.Server

	mu    sync.Mutex
	conns map[*conn]struct{}
	gen   uint64
	cache map[string]*prepared // snapshots of this generation by label key

	notifyCh   chan struct{}
	notifyOnce sync.Once
	done       chan struct{}
	stopOnce   sync.Once
}

// NewServer creates a server; call Serve to accept data planes.
func NewServer(opts ServerOptions) *Server {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 5 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 3 * opts.Heartbeat
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger.With("component", "distribute"),
		conns:    map[*conn]struct{}{},
		cache:    map[string]*prepared{},
		notifyCh: make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	var cfg *tls.Config
	if opts.TLS != nil {
		cfg = opts.TLS.Clone()
		if cfg.ClientAuth == tls.NoClientCert {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(cfg)),
		grpc.ForceServerCodec(Codec{}),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		// Clients ping every 30s; allow down to 10s so a tuned client is not cut off.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	)
	s.grpc.RegisterService(&serviceDesc, s)
	return s
}

// Serve accepts data planes on ln until Stop.
func (s *Server) Serve(ln net.Listener) error { return s.grpc.Serve(ln) }

// Stop closes every stream and the listener.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		close(s.done)
		finished := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(2 * time.Second):
			s.grpc.Stop()
			<-finished
		}
	})
}

// Notify says the configuration changed: every connected data plane's snapshot is
// recomputed (once per distinct label set) and pushed. It returns at once; calls while a
// recomputation runs are coalesced into one more run.
func (s *Server) Notify() {
	s.notifyOnce.Do(func() { go s.notifyLoop() })
	select {
	case s.notifyCh <- struct{}{}:
	default:
	}
}

func (s *Server) notifyLoop() {
	for {
		select {
		case <-s.notifyCh:
		case <-s.done:
			return
		}
		s.mu.Lock()
		s.gen++
		s.cache = map[string]*prepared{}
		conns := slices.Collect(maps.Keys(s.conns))
		s.mu.Unlock()
		for _, c := range conns {
			if p := s.prepare(c.key, c.labels); p.err == nil {
				c.offer(p)
			}
		}
	}
}

// DataPlanes lists the connected data planes, sorted by ID.
func (s *Server) DataPlanes() []DataPlane {
	s.mu.Lock()
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	out := make([]DataPlane, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.info())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].ConnectedAt.Before(out[j].ConnectedAt)
	})
	return out
}

// register adds a stream, closing an older stream of the same data-plane ID (a data
// plane that reconnected before its old connection was noticed dead).
func (s *Server) register(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for old := range s.conns {
		if old.id == c.id {
			s.log.Warn("data plane reconnected; closing its older stream", "id", c.id, "old", old.addr, "new", c.addr)
			old.close(errReplaced)
			delete(s.conns, old)
		}
	}
	s.conns[c] = struct{}{}
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// known returns a snapshot with the given version that the server still holds (the base
// of a live stream, or one of this generation), so a reconnecting data plane gets deltas.
func (s *Server) known(version string) *ir.Snapshot {
	if version == "" {
		return nil
	}
	s.mu.Lock()
	conns := slices.Collect(maps.Keys(s.conns))
	cached := slices.Collect(maps.Values(s.cache))
	s.mu.Unlock()
	for _, p := range cached {
		if p.done() && p.snap != nil && p.snap.Version == version {
			return p.snap
		}
	}
	for _, c := range conns {
		if b := c.baseSnapshot(); b != nil && b.Version == version {
			return b
		}
	}
	return nil
}

// prepared is the snapshot for one label set in one generation, encoded once for every
// data plane with those labels, with the deltas from the bases they run.
type prepared struct {
	gen   uint64
	once  sync.Once
	ready atomic.Bool // snap, full and err are set
	snap  *ir.Snapshot
	full  []byte
	err   error

	mu     sync.Mutex
	deltas map[string][]byte // base version → encoded delta; nil when full is smaller
}

func (p *prepared) done() bool { return p.ready.Load() }

// prepare returns this generation's snapshot for the labels, computing it on first use.
func (s *Server) prepare(key string, labels map[string]string) *prepared {
	s.mu.Lock()
	p := s.cache[key]
	if p == nil {
		p = &prepared{gen: s.gen}
		s.cache[key] = p
	}
	s.mu.Unlock()
	p.once.Do(func() {
		p.snap, p.full, p.err = s.compute(labels)
		p.ready.Store(true)
		if p.err != nil {
			// Not cached: the next data plane with these labels tries again.
			s.mu.Lock()
			if s.cache[key] == p {
				delete(s.cache, key)
			}
			s.mu.Unlock()
			s.log.Error("snapshot for data planes failed; they keep their current one", "labels", labels, "err", p.err)
		}
	})
	return p
}

func (s *Server) compute(labels map[string]string) (*ir.Snapshot, []byte, error) {
	if s.opts.Snapshot == nil {
		return nil, nil, errors.New("no SnapshotFunc configured")
	}
	snap, err := s.opts.Snapshot(labels)
	if err != nil {
		return nil, nil, err
	}
	if snap == nil {
		snap = &ir.Snapshot{}
	}
	if snap.Version == "" {
		c := *snap
		c.ComputeVersion()
		snap = &c
	}
	full, err := json.Marshal(ServerMessage{Snapshot: &SnapshotMessage{Version: snap.Version, Snapshot: snap}})
	if err != nil {
		return nil, nil, err
	}
	return snap, full, nil
}

// message returns what to send to a data plane running base: the delta when it is
// smaller than the full snapshot, else the full snapshot. The bool is true for a delta.
func (p *prepared) message(base *ir.Snapshot) (encoded, bool) {
	if base == nil || base.Version == p.snap.Version {
		return p.full, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.deltas[base.Version]
	if !ok {
		if d, fine := diff(base, p.snap); fine {
			if enc, err := json.Marshal(ServerMessage{Delta: d}); err == nil && len(enc) < len(p.full) {
				b = enc
			}
		}
		if p.deltas == nil {
			p.deltas = map[string][]byte{}
		}
		p.deltas[base.Version] = b
	}
	if b == nil {
		return p.full, false
	}
	return b, true
}

// labelKey is a canonical form of a label set.
func labelKey(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

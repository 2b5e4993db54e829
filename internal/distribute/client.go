package distribute

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"portico.dev/portico/internal/ir"
)

// ClientOptions configure the data-plane side.
type ClientOptions struct {
	// Address of the control plane's distribution endpoint (host:port).
	Address string
	// TLS holds the client certificate and the RootCAs the control plane's certificate
	// must chain to.
	TLS *tls.Config
	// ID names this data plane to the control plane (default hostname-pid).
	ID string
	// Labels select what the data plane serves: gateway, cluster, zone, version.
	Labels map[string]string
	// CacheFile keeps the last good snapshot (written atomically, 0600). When set,
	// RunClient applies it before connecting and announces its version.
	CacheFile string
	// Apply validates and installs a snapshot (proxy.Runtime.Apply does both); an error
	// keeps the previous one and is sent as a nack.
	// Snapshots passed to Apply share unchanged parts with earlier ones and must not be
	// modified: the next delta is verified with the hashes of their items as received.
	Apply func(*ir.Snapshot) error
	// MinBackoff and MaxBackoff bound the jittered, doubling wait between connection
	// attempts (default 200ms .. 10s); it resets after a healthy connection.
	MinBackoff, MaxBackoff time.Duration
	// Heartbeat is the interval heartbeats are sent at (default 5s); it must not exceed
	// the server's.
	Heartbeat time.Duration
	Logger    *slog.Logger

	// observe sees every server message before it is handled (tests).
	observe func(*ServerMessage)
}

// client is the state RunClient keeps across connections.
type client struct {
	opts    ClientOptions
	log     *slog.Logger
	current *ir.Snapshot   // last good snapshot, applied
	items   *snapshotItems // current's items, reused by the next delta and cache write
}

// RunClient keeps a stream to the control plane open until ctx ends, applying every
// snapshot it receives. It reconnects with jittered exponential backoff. It returns
// ctx's error, or an error for unusable options.
func RunClient(ctx context.Context, opts ClientOptions) error {
	if opts.Address == "" || opts.Apply == nil || opts.TLS == nil {
		return errors.New("distribute: client needs Address, TLS and Apply")
	}
	if opts.ID == "" {
		host, _ := os.Hostname()
		opts.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(10*time.Second, opts.MinBackoff)
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &client{opts: opts, log: opts.Logger.With("component", "distribute", "id", opts.ID)}
	c.loadCache()

	failures := 0
	for {
		started := time.Now()
		healthy, err := c.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if healthy || time.Since(started) >= opts.MaxBackoff {
			failures = 0
		}
		wait := backoff(opts.MinBackoff, opts.MaxBackoff, failures)
		failures++
		c.log.Warn("control plane stream ended; reconnecting", "address", opts.Address, "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// backoff is min·2ⁿ capped at max, with the upper half jittered.
func backoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 0; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	return d/2 + rand.N(d/2+1)
}

// loadCache applies the cached snapshot, so the data plane serves before it connects.
func (c *client) loadCache() {
	if c.opts.CacheFile == "" {
		return
	}
	snap, items, err := loadCache(c.opts.CacheFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		c.log.Error("ignoring the snapshot cache", "err", err)
		return
	}
	if err := c.apply(snap, items); err != nil {
		c.log.Error("the cached snapshot does not apply; starting empty", "file", c.opts.CacheFile, "version", snap.Version, "err", err)
		return
	}
	c.log.Info("started from the cached snapshot", "file", c.opts.CacheFile, "version", snap.Version)
}

// apply installs a snapshot with its items, making it the last good one. Validation is
// the Apply callback's (proxy.Runtime.Apply validates what s does not share with the
// snapshot in force), so it is not done twice here.
func (c *client) apply(s *ir.Snapshot, items *snapshotItems) error {
	if err := c.opts.Apply(s); err != nil {
		return err
	}
	c.current, c.items = s, items
	return nil
}

func (c *client) dial() (*grpc.ClientConn, error) {
	return grpc.NewClient(c.opts.Address,
		grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(c.opts.Address, c.opts.TLS))),
		callOptions(),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	)
}

// session runs one stream. healthy reports that the control plane answered on it.
func (c *client) session(ctx context.Context) (healthy bool, err error) {
	cc, err := c.dial()
	if err != nil {
		return false, err
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cc.NewStream(ctx, &serviceDesc.Streams[0], streamMethod)
	if err != nil {
		return false, err
	}
	var sendMu sync.Mutex
	send := func(m *ClientMessage) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.SendMsg(m)
	}
	hello := &Hello{ID: c.opts.ID, Labels: c.opts.Labels}
	if c.current != nil {
		hello.Version = c.current.Version
	}
	if err := send(&ClientMessage{Hello: hello}); err != nil {
		return false, err
	}
	hbErr := make(chan error, 1)
	go func() { hbErr <- c.heartbeats(ctx, send) }()
	defer func() {
		cancel()
		<-hbErr
	}()
	for {
		var m ServerMessage
		if err := stream.RecvMsg(&m); err != nil {
			return healthy, err
		}
		if !healthy {
			healthy = true
			c.log.Info("connected to the control plane", "address", c.opts.Address)
		}
		if reply := c.handle(&m); reply != nil {
			if err := send(reply); err != nil {
				return healthy, err
			}
		}
	}
}

func (c *client) heartbeats(ctx context.Context, send func(*ClientMessage) error) error {
	t := time.NewTicker(c.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if err := send(&ClientMessage{Heartbeat: &Heartbeat{Time: now}}); err != nil {
				return err
			}
		}
	}
}

// handle applies one server message and returns the ack or nack to send.
func (c *client) handle(m *ServerMessage) *ClientMessage {
	if c.opts.observe != nil {
		c.opts.observe(m)
	}
	var snap *ir.Snapshot
	var items *snapshotItems
	var version string
	switch {
	case m.Synced != nil:
		c.log.Info("in sync with the control plane", "version", m.Synced.Version)
		return nil
	case m.Snapshot != nil:
		version = m.Snapshot.Version
		snap = m.Snapshot.Snapshot
		if snap == nil {
			snap = &ir.Snapshot{}
		}
		announced := snap.Version
		items = itemsOf(snap)
		snap.Version = items.digest().Version()
		if snap.Version != version || announced != version {
			return nack(version, fmt.Errorf("snapshot content hashes to %q, announced %q", snap.Version, version), false)
		}
	case m.Delta != nil:
		version = m.Delta.Version
		var err error
		if snap, items, err = applyDelta(c.current, c.items, m.Delta); err != nil {
			c.log.Warn("delta does not rebuild; asking for a full snapshot", "version", version, "err", err)
			return nack(version, err, true)
		}
	default:
		return nil
	}
	if c.current != nil && c.current.Version == version {
		return &ClientMessage{Ack: &Ack{Version: version}}
	}
	if err := c.apply(snap, items); err != nil {
		c.log.Error("snapshot rejected; keeping the last good one", "version", version, "err", err)
		return nack(version, err, false)
	}
	c.log.Info("applied snapshot", "version", version, "delta", m.Delta != nil)
	if c.opts.CacheFile != "" {
		if err := writeCache(c.opts.CacheFile, snap, items); err != nil {
			c.log.Error("could not write the snapshot cache", "err", err)
		}
	}
	return &ClientMessage{Ack: &Ack{Version: version}}
}

// clientTLS copies cfg; for an address without a host (":9443", the local machine)
// the server name to verify defaults to localhost.
func clientTLS(addr string, cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil && host == "" && cfg.ServerName == "" {
		cfg.ServerName = "localhost"
	}
	return cfg
}

func nack(version string, err error, resync bool) *ClientMessage {
	return &ClientMessage{Nack: &Nack{Version: version, Error: err.Error(), Resync: resync}}
}

package distribute

import (
	"context"
	"errors"
	"maps"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"portico.dev/portico/internal/ir"
)

var (
	errReplaced = status.Error(codes.Aborted, "replaced by a newer stream of the same data plane")
	errStopping = status.Error(codes.Unavailable, "control plane stopping")
)

// conn is one data plane's stream. The handler goroutine sends; a second goroutine
// receives. Notify only drops the newest prepared snapshot into the mailbox (latest), so
// a slow data plane never holds up the others and never gets versions that were
// superseded while it was busy.
type conn struct {
	srv         *Server
	id          string
	labels      map[string]string
	key         string
	addr, cn    string
	connectedAt time.Time
	cancel      context.CancelCauseFunc
	wake        chan struct{}

	mu            chan struct{} // a one-slot lock, so info() never waits behind a slow send
	lastHeartbeat time.Time
	lastSeen      time.Time
	staleLogged   bool
	acked         string
	sent          string
	lastNack      *NackInfo
	latest        *prepared    // mailbox: the newest snapshot for this data plane
	base          *ir.Snapshot // the snapshot the data plane is known to run
	running       string       // its version ("" when unknown)
	inflight      *ir.Snapshot // pushed, not yet acked or nacked
	inflightAt    time.Time
	rejected      string // a version it nacked: not pushed again
	forceFull     bool   // it asked for a resync
	needSynced    bool   // Hello matched the current version: confirm once
}

func (c *conn) lock()   { c.mu <- struct{}{} }
func (c *conn) unlock() { <-c.mu }

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) close(cause error) { c.cancel(cause) }

// offer puts p in the mailbox unless a newer generation is already there.
func (c *conn) offer(p *prepared) {
	c.lock()
	if c.latest == nil || p.gen >= c.latest.gen {
		c.latest = p
	}
	c.unlock()
	c.signal()
}

func (c *conn) baseSnapshot() *ir.Snapshot {
	c.lock()
	defer c.unlock()
	return c.base
}

func (c *conn) info() DataPlane {
	c.lock()
	defer c.unlock()
	dp := DataPlane{
		ID: c.id, Labels: maps.Clone(c.labels), Address: c.addr, CommonName: c.cn,
		ConnectedAt: c.connectedAt, LastHeartbeat: c.lastHeartbeat,
		AckedVersion: c.acked, SentVersion: c.sent,
		Stale: time.Since(c.lastSeen) > 3*c.srv.opts.Heartbeat,
	}
	if c.lastNack != nil {
		n := *c.lastNack
		dp.LastNack = &n
	}
	return dp
}

// verifiedCN returns the common name of the peer's verified client certificate.
func verifiedCN(ctx context.Context) (addr, cn string, ok bool) {
	p, found := peer.FromContext(ctx)
	if !found {
		return "", "", false
	}
	if p.Addr != nil {
		addr = p.Addr.String()
	}
	ti, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return addr, "", false
	}
	return addr, ti.State.VerifiedChains[0][0].Subject.CommonName, true
}

// stream serves one data plane: Hello, then pushes until the stream ends, the data
// plane stops heartbeating, or the server stops.
func (s *Server) stream(ss grpc.ServerStream) error {
	addr, cn, ok := verifiedCN(ss.Context())
	if !ok {
		return status.Error(codes.Unauthenticated, "a verified client certificate is required")
	}
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)

	hello, ready := make(chan *Hello, 1), make(chan struct{})
	c := &conn{srv: s, addr: addr, cn: cn, cancel: cancel, wake: make(chan struct{}, 1), mu: make(chan struct{}, 1)}
	go c.receive(ctx, ss, hello, ready)

	hb := s.opts.Heartbeat
	select {
	case h := <-hello:
		c.id, c.labels, c.key = h.ID, h.Labels, labelKey(h.Labels)
		c.running, c.acked = h.Version, h.Version
		c.base = s.known(h.Version)
	case <-time.After(3*hb + s.opts.Grace):
		return status.Error(codes.DeadlineExceeded, "no hello")
	case <-ctx.Done():
		return streamEnd(ctx)
	case <-s.done:
		return errStopping
	}
	now := time.Now()
	c.connectedAt, c.lastSeen = now, now
	c.needSynced = true
	close(ready)
	s.register(c)
	defer s.unregister(c)
	s.log.Info("data plane connected", "id", c.id, "cn", cn, "address", addr, "labels", c.labels, "version", c.running)
	defer func() {
		s.log.Info("data plane disconnected", "id", c.id, "address", addr, "cause", context.Cause(ctx))
	}()

	if p := s.prepare(c.key, c.labels); p.err == nil {
		c.offer(p)
	}
	tick := time.NewTicker(max(hb/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		if err := c.push(ss); err != nil {
			return err
		}
		select {
		case <-c.wake:
		case <-tick.C:
			if err := c.checkAlive(); err != nil {
				return err
			}
		case <-ctx.Done():
			return streamEnd(ctx)
		case <-s.done:
			return errStopping
		}
	}
}

// streamEnd is the status for a stream whose context ended.
func streamEnd(ctx context.Context) error {
	cause := context.Cause(ctx)
	if _, ok := status.FromError(cause); ok {
		return cause
	}
	return status.FromContextError(ctx.Err()).Err()
}

// checkAlive marks the data plane stale after three missed heartbeats and ends the
// stream after that plus the grace period.
func (c *conn) checkAlive() error {
	hb := c.srv.opts.Heartbeat
	c.lock()
	silent := time.Since(c.lastSeen)
	logStale := silent > 3*hb && !c.staleLogged
	if logStale {
		c.staleLogged = true
	}
	c.unlock()
	if logStale {
		c.srv.log.Warn("data plane stale: missed 3 heartbeats", "id", c.id, "silent", silent.Round(time.Millisecond))
	}
	if silent > 3*hb+c.srv.opts.Grace {
		return status.Errorf(codes.DeadlineExceeded, "no heartbeat for %s", silent.Round(time.Millisecond))
	}
	return nil
}

// push sends the newest snapshot when nothing is in flight and the data plane does not
// run it yet: a delta from what it runs when smaller, else the full snapshot.
func (c *conn) push(ss grpc.ServerStream) error {
	c.lock()
	if c.inflight != nil && time.Since(c.inflightAt) > c.srv.opts.AckTimeout {
		c.srv.log.Warn("no ack from data plane; next push is a full snapshot", "id", c.id, "version", c.inflight.Version)
		c.inflight, c.base, c.running = nil, nil, ""
	}
	p := c.latest
	if c.inflight != nil || p == nil || p.snap == nil {
		c.unlock()
		return nil
	}
	v := p.snap.Version
	if v == c.running {
		synced := c.needSynced
		c.needSynced = false
		c.unlock()
		if synced {
			return ss.SendMsg(ServerMessage{Synced: &Synced{Version: v}})
		}
		return nil
	}
	c.needSynced = false
	if v == c.rejected && !c.forceFull {
		c.unlock()
		return nil
	}
	base := c.base
	if c.forceFull {
		base = nil
	}
	c.forceFull = false
	c.inflight, c.inflightAt, c.sent = p.snap, time.Now(), v
	c.unlock()

	msg, delta := p.message(base)
	if delta {
		c.srv.log.Debug("pushing delta", "id", c.id, "version", v, "base", base.Version, "bytes", len(msg))
	} else {
		c.srv.log.Debug("pushing snapshot", "id", c.id, "version", v, "bytes", len(msg))
	}
	return ss.SendMsg(msg)
}

// receive reads the data plane's messages until the stream ends. After Hello it waits
// for the handler to fill in the data plane's identity (ready).
func (c *conn) receive(ctx context.Context, ss grpc.ServerStream, hello chan<- *Hello, ready <-chan struct{}) {
	first := true
	for {
		var m ClientMessage
		if err := ss.RecvMsg(&m); err != nil {
			if errors.Is(err, context.Canceled) {
				c.cancel(nil)
			} else {
				c.cancel(err)
			}
			return
		}
		if first {
			if m.Hello == nil {
				c.cancel(status.Error(codes.InvalidArgument, "the first message must be hello"))
				return
			}
			first = false
			hello <- m.Hello
			select {
			case <-ready:
			case <-ctx.Done():
				return
			}
			continue
		}
		c.handle(&m)
	}
}

func (c *conn) handle(m *ClientMessage) {
	now := time.Now()
	var nack *NackInfo
	var lookup, resync string
	c.lock()
	c.lastSeen, c.staleLogged = now, false
	switch {
	case m.Heartbeat != nil:
		c.lastHeartbeat = now
	case m.Ack != nil:
		v := m.Ack.Version
		c.acked, c.running, c.rejected = v, v, ""
		if c.inflight != nil && c.inflight.Version == v {
			c.base = c.inflight
		} else if c.base == nil || c.base.Version != v {
			c.base, lookup = nil, v
		}
		c.inflight = nil
	case m.Nack != nil:
		n := m.Nack
		if c.inflight != nil && c.inflight.Version == n.Version {
			c.inflight = nil
		}
		if n.Resync {
			// Not a rejection of the configuration: the data plane could not rebuild a
			// delta and asks for the full snapshot.
			c.forceFull, resync = true, n.Error
		} else {
			nack = &NackInfo{Version: n.Version, Error: n.Error, Time: now}
			c.lastNack, c.rejected = nack, n.Version
		}
	}
	c.unlock()

	if lookup != "" {
		if b := c.srv.known(lookup); b != nil {
			c.lock()
			if c.running == lookup && c.base == nil {
				c.base = b
			}
			c.unlock()
		}
	}
	if resync != "" {
		c.srv.log.Info("data plane asked for a full snapshot", "id", c.id, "version", m.Nack.Version, "err", resync)
	}
	if nack != nil {
		c.srv.log.Warn("data plane rejected a snapshot", "id", c.id, "version", nack.Version, "err", nack.Error)
		if c.srv.opts.OnNack != nil {
			c.srv.opts.OnNack(c.info(), nack.Version, nack.Error)
		}
	}
	c.signal()
}

// Package l4 is the data plane's L4 proxy: StreamRoutes on TCP, TLS
// (passthrough, routed by the SNI of the ClientHello, never terminated) and UDP
// listeners.
//
// A Listener owns one socket and an atomically swapped *State (the compiled
// routes). A TCP connection loads the state once when accepted and keeps its
// route and upstream until it ends, so a swap never disturbs it; a UDP session
// likewise keeps the endpoint it started with. Endpoints are chosen with the
// upstream's balancer (Pick), so health checks and load balancing apply, and
// connection outcomes are reported back for passive health checking.
package l4

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy/conntrack"
)

// Options tune L4 proxying; zero values pick defaults.
type Options struct {
	// Logger receives operational messages. Default: discard.
	Logger *slog.Logger
	// DialTimeout bounds connecting to an endpoint when its upstream sets no
	// connect timeout. Default 5s.
	DialTimeout time.Duration
	// HelloTimeout bounds the wait for a TLS ClientHello. Default 10s.
	HelloTimeout time.Duration
	// MaxUDPSessions caps the sessions of one UDP listener; datagrams from new
	// clients are dropped while it is full. Default 4096.
	MaxUDPSessions int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = 10 * time.Second
	}
	if o.MaxUDPSessions <= 0 {
		o.MaxUDPSessions = 4096
	}
	return o
}

// Network returns the socket network an L4 protocol listens on: "udp" for UDP,
// "tcp" for TCP and TLS (which can therefore switch into each other without
// rebinding).
func Network(p ir.Protocol) string {
	if p == ir.UDP {
		return "udp"
	}
	return "tcp"
}

// Listener is one bound L4 socket. Its state is swapped with Store; Start
// begins serving and Shutdown ends it.
type Listener struct {
	name    string
	network string
	opts    Options
	log     *slog.Logger
	ln      net.Listener // tcp
	udp     *udpProxy    // udp
	state   atomic.Pointer[State]

	conns conntrack.Set[*tcpConn]
	wg    sync.WaitGroup // connection and session goroutines
	done  chan struct{}  // closed when the accept (or read) loop returns
}

// Listen binds the socket for an L4 listener named name ("address:port").
// It does not serve until Start.
func Listen(name, address string, port int, protocol ir.Protocol, opts Options) (*Listener, error) {
	opts = opts.withDefaults()
	l := &Listener{
		name: name, network: Network(protocol), opts: opts,
		log:  opts.Logger.With("listener", name),
		done: make(chan struct{}),
	}
	addr := net.JoinHostPort(address, strconv.Itoa(port))
	if l.network == "udp" {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, err
		}
		pc, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, err
		}
		l.udp = newUDPProxy(l, pc)
		return l, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l.ln = ln
	return l, nil
}

// Name returns the listener's name.
func (l *Listener) Name() string { return l.name }

// Network returns "tcp" or "udp".
func (l *Listener) Network() string { return l.network }

// Addr returns the bound address.
func (l *Listener) Addr() net.Addr {
	if l.udp != nil {
		return l.udp.pc.LocalAddr()
	}
	return l.ln.Addr()
}

// Store swaps in a new state. Connections already open keep the old one.
func (l *Listener) Store(st *State) { l.state.Store(st) }

// Close releases the socket of a listener that was never started.
func (l *Listener) Close() error {
	if l.udp != nil {
		return l.udp.pc.Close()
	}
	return l.ln.Close()
}

// Start serves the socket in the background. Store must have been called.
func (l *Listener) Start() {
	if l.udp != nil {
		go l.udp.serve()
		return
	}
	go l.acceptLoop()
}

// Shutdown stops accepting, lets open TCP connections finish until ctx ends,
// then closes them; it returns ctx's error if it had to. UDP sessions end at
// once: their replies leave through the listener's socket, which is closed.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.conns.Seal()
	_ = l.Close()
	<-l.done
	var err error
	if l.udp != nil {
		l.udp.closeAll()
	} else if !l.conns.WaitEmpty(ctx) {
		err = ctx.Err()
		l.conns.CloseAll((*tcpConn).close)
	}
	l.wg.Wait()
	return err
}

func (l *Listener) acceptLoop() {
	defer close(l.done)
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Debug("accept failed", "error", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		tc := &tcpConn{client: c}
		if !l.track(tc) {
			_ = c.Close()
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.untrack(tc)
			defer tc.close()
			l.serveTCP(tc, l.state.Load())
		}()
	}
}

func (l *Listener) track(c *tcpConn) bool { return l.conns.Add(c) }

func (l *Listener) untrack(c *tcpConn) { l.conns.Remove(c) }

// tcpConn is one proxied connection: the client side and, once dialed, the
// upstream side. close may be called from any goroutine.
type tcpConn struct {
	client net.Conn
	mu     sync.Mutex
	up     net.Conn
	closed bool
}

// setUpstream records the upstream side; false if the connection was closed
// meanwhile (the caller then closes up).
func (c *tcpConn) setUpstream(up net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.up = up
	return true
}

func (c *tcpConn) close() {
	c.mu.Lock()
	c.closed = true
	up := c.up
	c.mu.Unlock()
	_ = c.client.Close()
	if up != nil {
		_ = up.Close()
	}
}

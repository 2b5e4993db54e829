package l4

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy/proxyproto"
	"portico.dev/portico/internal/proxy/upstream"
)

// maxAttempts is how many endpoints a connection tries before giving up.
const maxAttempts = 3

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// serveTCP runs one accepted connection on state st to its end.
func (l *Listener) serveTCP(tc *tcpConn, st *State) {
	if st == nil {
		return
	}
	c := tc.client
	if st.accept != nil {
		pc, err := st.accept.Accept(c)
		if err != nil {
			l.log.Debug("PROXY header refused", "remote", c.RemoteAddr(), "error", err)
			return
		}
		c = pc
	}
	sni := ""
	if st.protocol == ir.TLS {
		_ = c.SetReadDeadline(time.Now().Add(l.opts.HelloTimeout))
		name, rc, err := peekClientHello(c)
		if err != nil {
			l.log.Debug("no TLS ClientHello", "remote", c.RemoteAddr(), "error", err)
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		sni, c = name, rc
	}
	r := st.match(sni)
	if r == nil {
		l.log.Debug("no stream route", "remote", c.RemoteAddr(), "sni", sni)
		return
	}
	up, b, err := l.dial(r, c)
	if err != nil {
		l.log.Debug("upstream connect failed", "route", r.name, "error", err)
		return
	}
	if !tc.setUpstream(up) {
		_ = up.Close()
		return
	}
	if b.proxyV != 0 {
		h := proxyproto.ForConn(b.proxyV, c.RemoteAddr(), c.LocalAddr())
		_ = up.SetWriteDeadline(time.Now().Add(l.dialTimeout(b.up)))
		if _, err := up.Write(h.AppendTo(nil)); err != nil {
			return
		}
		_ = up.SetWriteDeadline(time.Time{})
	}
	p := &pipe{idle: r.idle, a: c, b: up}
	p.run()
}

func (l *Listener) dialTimeout(u *upstream.Upstream) time.Duration {
	if ms := u.Config().Timeouts.ConnectMillis; ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return l.opts.DialTimeout
}

// dial connects to an endpoint of one of r's backends, trying up to maxAttempts
// endpoints (the balancer is asked to avoid those that failed) and reporting
// each outcome for passive health checking.
func (l *Listener) dial(r *route, c net.Conn) (net.Conn, *backend, error) {
	b := r.pickBackend()
	if b == nil {
		return nil, nil, errors.New("route has no backends")
	}
	info := upstream.PickInfo{ClientIP: hostOf(c.RemoteAddr())}
	d := net.Dialer{Timeout: l.dialTimeout(b.up), KeepAlive: 30 * time.Second}
	err := fmt.Errorf("upstream %q has no endpoints", b.up.Name())
	for range maxAttempts {
		ep := b.up.Pick(&info)
		if ep == nil {
			break
		}
		start := time.Now()
		up, derr := d.Dial("tcp", ep.Address)
		if derr == nil {
			ep.Report(upstream.Result{Latency: time.Since(start)})
			if tc, ok := up.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			return up, b, nil
		}
		ep.Report(upstream.Result{Kind: upstream.ConnectFailed, Latency: time.Since(start)})
		info.Avoid = append(info.Avoid, ep.Address)
		err = derr
	}
	return nil, nil, err
}

// hostOf returns the IP of a TCP or UDP address as a string ("" otherwise).
func hostOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	}
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return ""
}

// pipe copies both ways between a (client) and b (upstream). When one side
// finishes sending (EOF) the other's write half is closed, so half-closed
// protocols work; an error on either side ends both. With idle set, the
// connection ends after that long without a byte in either direction.
type pipe struct {
	a, b  net.Conn
	idle  time.Duration
	last  atomic.Int64 // unix nanos of the last byte moved
	abort sync.Once
}

func (p *pipe) run() {
	p.last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.copy(p.b, p.a)
	}()
	p.copy(p.a, p.b)
	<-done
}

// copy moves src to dst until src ends, then half-closes dst.
func (p *pipe) copy(dst, src net.Conn) {
	err := p.move(dst, src)
	if err == nil {
		// A failed shutdown(2) (the peer already left) is not worth cutting the
		// other direction for; a conn that cannot half-close at all is.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			err = errors.New("cannot half-close")
		}
	}
	if err != nil {
		p.abort.Do(func() {
			_ = p.a.Close()
			_ = p.b.Close()
		})
	}
}

func (p *pipe) move(dst, src net.Conn) error {
	if p.idle <= 0 {
		_, sok := src.(*net.TCPConn)
		_, dok := dst.(*net.TCPConn)
		if sok && dok {
			_, err := io.Copy(dst, src) // splice(2) on Linux
			return err
		}
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		if p.idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(p.idle))
		}
		n, err := src.Read(buf)
		if n > 0 {
			p.last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var ne net.Error
			if p.idle > 0 && errors.As(err, &ne) && ne.Timeout() &&
				time.Since(time.Unix(0, p.last.Load())) < p.idle {
				continue // the other direction was active
			}
			return err
		}
	}
}

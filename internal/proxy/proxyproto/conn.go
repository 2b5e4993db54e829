package proxyproto

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// DefaultTimeout bounds how long a trusted source may take to send its header.
const DefaultTimeout = 5 * time.Second

// Policy decides what an accepted connection must send. A source inside the
// trusted ranges must start with a valid header (anything else is refused);
// any other source is served as it is, but refused if it sends a header, so a
// client cannot forge its address.
type Policy struct {
	trusted []netip.Prefix
	timeout time.Duration
}

// NewPolicy parses trusted CIDRs (a bare IP is one address). timeout bounds the
// wait for a header; 0 means DefaultTimeout.
func NewPolicy(cidrs []string, timeout time.Duration) (*Policy, error) {
	p := &Policy{timeout: timeout}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("proxyproto: trusted CIDR %q: %w", s, err)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		p.trusted = append(p.trusted, pfx.Masked())
	}
	return p, nil
}

// Trusted reports whether a connection from addr may send a header.
func (p *Policy) Trusted(addr net.Addr) bool {
	ap, ok := addrPort(addr)
	if !ok {
		return false
	}
	a := ap.Addr().Unmap()
	for _, pfx := range p.trusted {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Accept applies the policy to a freshly accepted connection. For a trusted
// source it reads the header (within the timeout) and returns a *Conn whose
// RemoteAddr and LocalAddr are the addresses the header carries; on error the
// caller closes c. For other sources it returns at once a connection that
// fails its first Read with ErrUntrusted if the client starts with a PROXY
// signature. Run it in the connection's own goroutine: it may block.
func (p *Policy) Accept(c net.Conn) (net.Conn, error) {
	if !p.Trusted(c.RemoteAddr()) {
		return &guardConn{Conn: c}, nil
	}
	br := bufio.NewReaderSize(c, 256)
	_ = c.SetReadDeadline(time.Now().Add(p.timeout))
	h, err := Read(br)
	if err != nil {
		return nil, fmt.Errorf("proxyproto: from %s: %w", c.RemoteAddr(), err)
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &Conn{Conn: c, hdr: h}
	if br.Buffered() > 0 {
		pc.rest, _ = br.Peek(br.Buffered())
	}
	if h.Known() {
		if h.UDP {
			pc.remote, pc.local = net.UDPAddrFromAddrPort(h.Source), net.UDPAddrFromAddrPort(h.Destination)
		} else {
			pc.remote, pc.local = net.TCPAddrFromAddrPort(h.Source), net.TCPAddrFromAddrPort(h.Destination)
		}
	}
	return pc, nil
}

// Conn is a connection whose PROXY header has been read. Reads continue with
// the bytes that followed the header.
type Conn struct {
	net.Conn
	hdr           *Header
	rest          []byte // bytes read past the header, served first
	remote, local net.Addr
}

// Header returns the decoded header.
func (c *Conn) Header() *Header { return c.hdr }

// RemoteAddr returns the client address from the header, or the peer's own
// address when the header carried none (LOCAL, UNKNOWN).
func (c *Conn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr returns the original destination from the header, or the socket's
// own address when the header carried none.
func (c *Conn) LocalAddr() net.Addr {
	if c.local != nil {
		return c.local
	}
	return c.Conn.LocalAddr()
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the underlying connection when it supports it.
func (c *Conn) CloseWrite() error { return closeWrite(c.Conn) }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("proxyproto: %T cannot half-close", c)
}

// guardConn serves an untrusted connection, refusing it if it opens with a
// PROXY signature. It decides on the first bytes the client sends, so a
// protocol where the server speaks first is not delayed.
type guardConn struct {
	net.Conn
	checked bool
	head    [12]byte
	pending []byte // checked bytes not yet returned
	err     error  // read error met while checking, returned after pending
}

func (g *guardConn) Read(p []byte) (int, error) {
	if !g.checked {
		if err := g.check(); err != nil {
			return 0, err
		}
	}
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.Conn.Read(p)
}

// check reads until the first bytes either rule out a signature or complete one.
func (g *guardConn) check() error {
	n := 0
	for maybeSignature(g.head[:n]) {
		if bytes.HasPrefix(g.head[:n], []byte(sigV1)) || bytes.Equal(g.head[:n], sigV2) {
			return ErrUntrusted
		}
		m, err := g.Conn.Read(g.head[n:])
		n += m
		if err != nil {
			g.err = err
			break
		}
	}
	g.checked = true
	g.pending = g.head[:n]
	if g.err == nil && n > 0 && (bytes.HasPrefix(g.pending, []byte(sigV1)) || bytes.Equal(g.pending, sigV2)) {
		return ErrUntrusted
	}
	return nil
}

// maybeSignature reports whether b could still be the start of a signature.
func maybeSignature(b []byte) bool {
	return len(b) <= len(sigV1) && strings.HasPrefix(sigV1, string(b)) ||
		len(b) <= len(sigV2) && bytes.HasPrefix(sigV2, b)
}

// CloseWrite half-closes the underlying connection when it supports it.
func (g *guardConn) CloseWrite() error { return closeWrite(g.Conn) }

// NetConn returns the underlying connection.
func (g *guardConn) NetConn() net.Conn { return g.Conn }

package l4

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"portico.dev/portico/internal/proxy/upstream"
)

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

// udpProxy serves a UDP listener: each client address gets a session with its
// own connected socket to one endpoint, and replies go back to the client from
// the listener's socket (so the client sees the address it sent to).
type udpProxy struct {
	l        *Listener
	pc       *net.UDPConn
	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
	dropped  atomic.Uint64 // datagrams dropped because the table was full
}

type udpSession struct {
	client   netip.AddrPort
	up       *net.UDPConn
	ep       *upstream.Endpoint
	idle     time.Duration
	last     atomic.Int64 // unix nanos of the last datagram either way
	reported atomic.Bool  // success reported once
}

func newUDPProxy(l *Listener, pc *net.UDPConn) *udpProxy {
	return &udpProxy{l: l, pc: pc, sessions: map[netip.AddrPort]*udpSession{}}
}

// serve reads client datagrams until the socket is closed.
func (u *udpProxy) serve() {
	defer close(u.l.done)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := u.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			u.l.log.Debug("udp read failed", "error", err)
			continue
		}
		s := u.session(from)
		if s == nil {
			continue
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := s.up.Write(buf[:n]); err != nil {
			u.l.log.Debug("udp send failed", "endpoint", s.ep.Address, "error", err)
		}
	}
}

// session returns from's session, opening one on the current state's route.
func (u *udpProxy) session(from netip.AddrPort) *udpSession {
	u.mu.Lock()
	s := u.sessions[from]
	full := len(u.sessions) >= u.l.opts.MaxUDPSessions
	u.mu.Unlock()
	if s != nil {
		return s
	}
	if full {
		if u.dropped.Add(1)%1024 == 1 {
			u.l.log.Warn("udp session table full, dropping datagrams from new clients",
				"max", u.l.opts.MaxUDPSessions)
		}
		return nil
	}
	st := u.l.state.Load()
	if st == nil || st.fallback == nil {
		return nil
	}
	r := st.fallback
	b := r.pickBackend()
	if b == nil {
		return nil
	}
	info := upstream.PickInfo{ClientIP: from.Addr().Unmap().String()}
	for range maxAttempts {
		ep := b.up.Pick(&info)
		if ep == nil {
			return nil
		}
		up, err := dialUDP(ep.Address)
		if err != nil {
			ep.Report(upstream.Result{Kind: upstream.ConnectFailed})
			info.Avoid = append(info.Avoid, ep.Address)
			continue
		}
		s = &udpSession{client: from, up: up, ep: ep, idle: r.idle}
		if s.idle <= 0 {
			s.idle = DefaultUDPIdle
		}
		s.last.Store(time.Now().UnixNano())
		u.mu.Lock()
		u.sessions[from] = s
		u.mu.Unlock()
		u.l.wg.Add(1)
		go u.replies(s)
		return s
	}
	return nil
}

func dialUDP(addr string) (*net.UDPConn, error) {
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.DialUDP("udp", nil, ra)
}

// replies relays the endpoint's datagrams to the client until the session has
// been silent for its idle timeout or its socket fails.
func (u *udpProxy) replies(s *udpSession) {
	defer u.l.wg.Done()
	defer u.remove(s)
	buf := make([]byte, maxDatagram)
	for {
		_ = s.up.SetReadDeadline(time.Unix(0, s.last.Load()).Add(s.idle))
		n, err := s.up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Since(time.Unix(0, s.last.Load())) < s.idle {
					continue // the client spoke meanwhile
				}
				return
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				// ICMP port unreachable: nothing listens on the endpoint.
				s.ep.Report(upstream.Result{Kind: upstream.ConnectFailed})
			}
			return
		}
		s.last.Store(time.Now().UnixNano())
		if !s.reported.Swap(true) {
			s.ep.Report(upstream.Result{})
		}
		if _, err := u.pc.WriteToUDPAddrPort(buf[:n], s.client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}
}

func (u *udpProxy) remove(s *udpSession) {
	u.mu.Lock()
	if u.sessions[s.client] == s {
		delete(u.sessions, s.client)
	}
	u.mu.Unlock()
	_ = s.up.Close()
}

// closeAll ends every session.
func (u *udpProxy) closeAll() {
	u.mu.Lock()
	for _, s := range u.sessions {
		_ = s.up.Close()
	}
	u.mu.Unlock()
}

// Sessions returns the number of open UDP sessions (0 for TCP listeners).
func (l *Listener) Sessions() int {
	if l.udp == nil {
		return 0
	}
	l.udp.mu.Lock()
	defer l.udp.mu.Unlock()
	return len(l.udp.sessions)
}

package upstream

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSClient is a small stub resolver that reports record TTLs, which Go's
// net.Resolver hides. It is the default Resolver of DNS discovery.
//
// It asks each nameserver in turn over UDP (retrying over TCP when the
// answer is truncated), two rounds at most, and follows CNAME chains
// inside an answer. NXDOMAIN is final; SERVFAIL, REFUSED and timeouts move
// on to the next server.
//
// Names are expanded with the resolv.conf search list only minimally: a name
// that ends with a dot or contains one is absolute and is queried as is
// (unlike glibc, whatever ndots says, so "svc.ns" under Kubernetes' ndots:5
// is not searched first); a single-label name is tried with each search
// domain appended and then alone (or only alone with "options ndots:0").
type DNSClient struct {
	// Servers are the nameservers, "ip:port" (a bare IP means port 53).
	// When empty, the nameservers, search list and ndots come from ConfPath,
	// re-read at most every 5 s; 127.0.0.1:53 is used if it lists none.
	Servers []string
	// ConfPath is the resolv.conf read when Servers is empty
	// (default /etc/resolv.conf).
	ConfPath string
	// Timeout bounds one query to one server (default 2 s); the context's
	// deadline bounds the whole lookup.
	Timeout time.Duration

	mu     sync.Mutex
	conf   *resolvConf
	readAt time.Time
}

// TTLUnknown is the TTL a Resolver reports when it cannot tell how long an
// answer stays valid; DNS discovery then re-resolves every RefreshMillis.
const TTLUnknown time.Duration = -1

// ErrNoSuchHost is wrapped by lookups of names that do not exist (NXDOMAIN).
var ErrNoSuchHost = errors.New("no such host")

const (
	defaultResolvConf = "/etc/resolv.conf"
	resolvConfReread  = 5 * time.Second
	defaultDNSTimeout = 2 * time.Second
	dnsRounds         = 2
	ednsUDPSize       = 1232 // the commonly recommended EDNS0 buffer size
	maxCNAMEHops      = 8
)

// resolvConf is the part of resolv.conf the client uses.
type resolvConf struct {
	servers []string
	search  []string
	ndots   int
}

// LookupIPTTL resolves host's A and AAAA records. The TTL is the smallest of
// the records (and CNAMEs) used; an IP literal is returned as is with
// TTLUnknown.
func (c *DNSClient) LookupIPTTL(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, TTLUnknown, nil
	}
	conf := c.config()
	var lastErr error
	for _, name := range conf.candidates(host) {
		type result struct {
			ans dnsAnswer
			err error
		}
		ch := make(chan result, 1)
		go func() {
			a, err := c.query(ctx, conf, name, dnsmessage.TypeAAAA)
			ch <- result{a, err}
		}()
		a4, err4 := c.query(ctx, conf, name, dnsmessage.TypeA)
		r6 := <-ch
		if err4 != nil && r6.err != nil {
			if !errors.Is(err4, ErrNoSuchHost) {
				return nil, 0, err4
			}
			lastErr = err4
			continue
		}
		ips := append(a4.ips, r6.ans.ips...)
		if len(ips) == 0 {
			lastErr = fmt.Errorf("lookup %s: no A or AAAA records", name)
			continue
		}
		return ips, minTTL(a4, r6.ans), nil
	}
	return nil, 0, lastErr
}

// LookupSRVTTL resolves name's SRV records (name is the full owner name,
// e.g. "_http._tcp.svc.example"). Targets keep their trailing dot.
func (c *DNSClient) LookupSRVTTL(ctx context.Context, name string) ([]*net.SRV, time.Duration, error) {
	conf := c.config()
	var lastErr error
	for _, n := range conf.candidates(name) {
		ans, err := c.query(ctx, conf, n, dnsmessage.TypeSRV)
		if err != nil {
			if !errors.Is(err, ErrNoSuchHost) {
				return nil, 0, err
			}
			lastErr = err
			continue
		}
		if len(ans.srvs) == 0 {
			lastErr = fmt.Errorf("lookup %s: no SRV records", n)
			continue
		}
		return ans.srvs, ans.ttl, nil
	}
	return nil, 0, lastErr
}

// dnsAnswer is what one query returned.
type dnsAnswer struct {
	ips  []netip.Addr
	srvs []*net.SRV
	ttl  time.Duration // smallest TTL of the records used; 0 without records
}

// minTTL is the smallest TTL among the answers that have records.
func minTTL(as ...dnsAnswer) time.Duration {
	ttl := time.Duration(-1)
	for _, a := range as {
		if len(a.ips)+len(a.srvs) > 0 && (ttl < 0 || a.ttl < ttl) {
			ttl = a.ttl
		}
	}
	return max(ttl, 0)
}

// config returns the nameservers and search rules to use.
func (c *DNSClient) config() *resolvConf {
	if len(c.Servers) > 0 {
		s := make([]string, len(c.Servers))
		for i, a := range c.Servers {
			s[i] = withDNSPort(a)
		}
		return &resolvConf{servers: s, ndots: 1}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conf == nil || time.Since(c.readAt) > resolvConfReread {
		path := c.ConfPath
		if path == "" {
			path = defaultResolvConf
		}
		c.conf, c.readAt = readResolvConf(path), time.Now()
	}
	return c.conf
}

// withDNSPort adds port 53 to a bare IP address.
func withDNSPort(addr string) string {
	if ip, err := netip.ParseAddr(addr); err == nil {
		return net.JoinHostPort(ip.String(), "53")
	}
	return addr
}

// readResolvConf parses the nameserver, search, domain and ndots settings of
// a resolv.conf; a missing or unreadable file means the defaults.
func readResolvConf(path string) *resolvConf {
	conf := &resolvConf{ndots: 1}
	if f, err := os.Open(path); err == nil {
		parseResolvConf(f, conf)
		f.Close()
	}
	if len(conf.servers) == 0 {
		conf.servers = []string{"127.0.0.1:53"}
	}
	return conf
}

func parseResolvConf(r io.Reader, conf *resolvConf) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line, _, _ = strings.Cut(line, ";")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if ip, err := netip.ParseAddr(f[1]); err == nil {
				conf.servers = append(conf.servers, net.JoinHostPort(ip.String(), "53"))
			}
		case "search", "domain": // the last one wins, as in glibc
			conf.search = nil
			for _, d := range f[1:] {
				conf.search = append(conf.search, strings.TrimSuffix(d, "."))
			}
		case "options":
			for _, o := range f[1:] {
				if v, ok := strings.CutPrefix(o, "ndots:"); ok {
					if n, err := strconv.Atoi(v); err == nil {
						conf.ndots = min(max(n, 0), 15)
					}
				}
			}
		}
	}
}

// candidates lists the fully qualified names to try for name, in order.
func (conf *resolvConf) candidates(name string) []string {
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	if strings.Contains(name, ".") || conf.ndots == 0 {
		return []string{name + "."}
	}
	out := make([]string, 0, len(conf.search)+1)
	for _, d := range conf.search {
		out = append(out, name+"."+d+".")
	}
	return append(out, name+".")
}

// query asks the nameservers for one name and type until one answers.
func (c *DNSClient) query(ctx context.Context, conf *resolvConf, fqdn string, t dnsmessage.Type) (dnsAnswer, error) {
	n, err := dnsmessage.NewName(fqdn)
	if err != nil {
		return dnsAnswer{}, fmt.Errorf("lookup %s: %w", fqdn, err)
	}
	q := dnsmessage.Question{Name: n, Type: t, Class: dnsmessage.ClassINET}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultDNSTimeout
	}
	lastErr := errors.New("no nameservers")
	for range dnsRounds {
		for _, srv := range conf.servers {
			if err := ctx.Err(); err != nil {
				return dnsAnswer{}, fmt.Errorf("lookup %s: %w", fqdn, err)
			}
			m, err := exchange(ctx, srv, q, timeout)
			if err != nil {
				lastErr = err
				continue
			}
			switch m.RCode {
			case dnsmessage.RCodeSuccess:
				return extractAnswer(m, fqdn, t), nil
			case dnsmessage.RCodeNameError:
				return dnsAnswer{}, fmt.Errorf("lookup %s: %w", fqdn, ErrNoSuchHost)
			default:
				lastErr = fmt.Errorf("server %s: %s", srv, m.RCode)
			}
		}
	}
	return dnsAnswer{}, fmt.Errorf("lookup %s %s: %w", fqdn, t, lastErr)
}

// exchange sends q to server over UDP, and over TCP when the UDP answer is
// truncated.
func exchange(ctx context.Context, server string, q dnsmessage.Question, timeout time.Duration) (*dnsmessage.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id := uint16(rand.N(math.MaxUint16 + 1))
	pkt, err := buildQuery(id, q)
	if err != nil {
		return nil, err
	}
	m, truncated, err := exchangeUDP(ctx, server, id, q, pkt)
	if err != nil || !truncated {
		return m, err
	}
	return exchangeTCP(ctx, server, id, q, pkt)
}

// buildQuery packs a recursive query advertising an EDNS0 buffer size.
func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(ednsUDPSize, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// exchangeUDP sends pkt and waits for the matching reply; replies with another
// ID or question (stale or spoofed) are skipped. A truncated reply is only
// reported as such: its records may be incomplete.
func exchangeUDP(ctx context.Context, server string, id uint16, q dnsmessage.Question, pkt []byte) (*dnsmessage.Message, bool, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(pkt); err != nil {
		return nil, false, err
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			return nil, false, err
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil || !h.Response || h.ID != id {
			continue
		}
		if rq, err := p.Question(); err != nil || !sameQuestion(rq, q) {
			continue
		}
		if h.Truncated {
			return nil, true, nil
		}
		m := new(dnsmessage.Message)
		if err := m.Unpack(buf[:n]); err != nil {
			return nil, false, fmt.Errorf("server %s: bad reply: %w", server, err)
		}
		return m, false, nil
	}
}

// exchangeTCP sends pkt with the 2-byte length prefix of DNS over TCP and
// reads one reply.
func exchangeTCP(ctx context.Context, server string, id uint16, q dnsmessage.Question, pkt []byte) (*dnsmessage.Message, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(pkt)), uint16(len(pkt)))
	if _, err := conn.Write(append(out, pkt...)); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	m := new(dnsmessage.Message)
	if err := m.Unpack(buf); err != nil {
		return nil, fmt.Errorf("server %s: bad reply: %w", server, err)
	}
	if !m.Response || m.ID != id || len(m.Questions) == 0 || !sameQuestion(m.Questions[0], q) {
		return nil, fmt.Errorf("server %s: mismatched reply", server)
	}
	return m, nil
}

func sameQuestion(a, b dnsmessage.Question) bool {
	return a.Type == b.Type && a.Class == b.Class && strings.EqualFold(a.Name.String(), b.Name.String())
}

// extractAnswer collects the records of type t for fqdn, following CNAMEs
// within the reply; the TTL is the smallest of the records used.
func extractAnswer(m *dnsmessage.Message, fqdn string, t dnsmessage.Type) dnsAnswer {
	name := fqdn
	ttl := uint32(math.MaxUint32)
	for range maxCNAMEHops {
		next := ""
		for _, r := range m.Answers {
			if c, ok := r.Body.(*dnsmessage.CNAMEResource); ok && strings.EqualFold(r.Header.Name.String(), name) {
				next = c.CNAME.String()
				ttl = min(ttl, r.Header.TTL)
				break
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	var a dnsAnswer
	for _, r := range m.Answers {
		if r.Header.Type != t || r.Header.Class != dnsmessage.ClassINET || !strings.EqualFold(r.Header.Name.String(), name) {
			continue
		}
		switch b := r.Body.(type) {
		case *dnsmessage.AResource:
			a.ips = append(a.ips, netip.AddrFrom4(b.A))
		case *dnsmessage.AAAAResource:
			a.ips = append(a.ips, netip.AddrFrom16(b.AAAA).Unmap())
		case *dnsmessage.SRVResource:
			a.srvs = append(a.srvs, &net.SRV{Target: b.Target.String(), Port: b.Port, Priority: b.Priority, Weight: b.Weight})
		default:
			continue
		}
		ttl = min(ttl, r.Header.TTL)
	}
	if len(a.ips)+len(a.srvs) > 0 {
		a.ttl = time.Duration(ttl) * time.Second
	}
	return a
}

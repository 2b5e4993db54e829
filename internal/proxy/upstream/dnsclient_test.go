package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS is an authoritative-looking DNS server on 127.0.0.1, UDP and TCP on
// the same port, answering from a table the test edits.
type fakeDNS struct {
	addr string
	udp  net.PacketConn
	tcp  net.Listener
	wg   sync.WaitGroup

	mu       sync.Mutex
	answers  map[string][]dnsmessage.Resource // "name TYPE" → answer section
	nx       map[string]bool                  // names answered with NXDOMAIN
	truncate bool                             // UDP replies are empty with TC set
	queries  map[string][]time.Time           // "name TYPE proto" → arrival times
}

func newFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	f := &fakeDNS{answers: map[string][]dnsmessage.Resource{}, nx: map[string]bool{}, queries: map[string][]time.Time{}}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			f.udp, f.tcp, f.addr = pc, ln, pc.LocalAddr().String()
			break
		}
		pc.Close()
		if i == 10 {
			t.Fatal(err)
		}
	}
	f.wg.Add(2)
	go f.serveUDP()
	go f.serveTCP()
	t.Cleanup(func() {
		f.udp.Close()
		f.tcp.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeDNS) serveUDP() {
	defer f.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := f.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		if out := f.reply(buf[:n], "udp"); out != nil {
			f.udp.WriteTo(out, from)
		}
	}
}

func (f *fakeDNS) serveTCP() {
	defer f.wg.Done()
	for {
		c, err := f.tcp.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var l [2]byte
			if _, err := io.ReadFull(c, l[:]); err != nil {
				return
			}
			req := make([]byte, binary.BigEndian.Uint16(l[:]))
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			if out := f.reply(req, "tcp"); out != nil {
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
			}
		}()
	}
}

func (f *fakeDNS) reply(req []byte, proto string) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(req); err != nil || len(m.Questions) != 1 {
		return nil
	}
	q := m.Questions[0]
	name := strings.ToLower(q.Name.String())
	key := name + " " + q.Type.String()
	resp := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: m.ID, Response: true, Authoritative: true, RecursionAvailable: true},
		Questions: m.Questions,
	}
	f.mu.Lock()
	f.queries[key+" "+proto] = append(f.queries[key+" "+proto], time.Now())
	switch {
	case f.nx[name]:
		resp.RCode = dnsmessage.RCodeNameError
	case f.truncate && proto == "udp":
		resp.Truncated = true
	default:
		resp.Answers = slices.Clone(f.answers[key])
	}
	f.mu.Unlock()
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	return out
}

// set replaces the answer to (name, t) and clears NXDOMAIN for name.
func (f *fakeDNS) set(name string, t dnsmessage.Type, rrs ...dnsmessage.Resource) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[name+" "+t.String()] = rrs
	delete(f.nx, name)
}

func (f *fakeDNS) setNX(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nx[name] = true
}

func (f *fakeDNS) setTruncate(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.truncate = on
}

// times returns when (name, t) was asked over proto.
func (f *fakeDNS) times(name string, t dnsmessage.Type, proto string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries[name+" "+t.String()+" "+proto])
}

func (f *fakeDNS) count(name string, t dnsmessage.Type) int {
	return len(f.times(name, t, "udp")) + len(f.times(name, t, "tcp"))
}

func rrHeader(name string, t dnsmessage.Type, ttl uint32) dnsmessage.ResourceHeader {
	return dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: t, Class: dnsmessage.ClassINET, TTL: ttl}
}

func rrA(name string, ttl uint32, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: rrHeader(name, dnsmessage.TypeA, ttl),
		Body: &dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()}}
}

func rrAAAA(name string, ttl uint32, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: rrHeader(name, dnsmessage.TypeAAAA, ttl),
		Body: &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(ip).As16()}}
}

func rrCNAME(name string, ttl uint32, target string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: rrHeader(name, dnsmessage.TypeCNAME, ttl),
		Body: &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)}}
}

func rrSRV(name string, ttl uint32, prio, weight, port uint16, target string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: rrHeader(name, dnsmessage.TypeSRV, ttl),
		Body: &dnsmessage.SRVResource{Priority: prio, Weight: weight, Port: port, Target: dnsmessage.MustNewName(target)}}
}

func lookupCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDNSClientLookups(t *testing.T) {
	f := newFakeDNS(t)
	c := &DNSClient{Servers: []string{f.addr}, Timeout: time.Second}
	ctx := lookupCtx(t)

	// A and AAAA are merged; the TTL is the smallest.
	f.set("svc.test.", dnsmessage.TypeA, rrA("svc.test.", 30, "127.0.0.1"))
	f.set("svc.test.", dnsmessage.TypeAAAA, rrAAAA("svc.test.", 10, "::1"))
	ips, ttl, err := c.LookupIPTTL(ctx, "svc.test")
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	if err != nil || !slices.Equal(ips, want) || ttl != 10*time.Second {
		t.Fatalf("A+AAAA: %v %v %v", ips, ttl, err)
	}

	// A CNAME chain inside the reply is followed; its TTL counts too.
	f.set("alias.test.", dnsmessage.TypeA, rrCNAME("alias.test.", 5, "svc.test."), rrA("svc.test.", 30, "127.0.0.1"))
	ips, ttl, err = c.LookupIPTTL(ctx, "alias.test.")
	if err != nil || len(ips) != 1 || ttl != 5*time.Second {
		t.Fatalf("CNAME: %v %v %v", ips, ttl, err)
	}

	// SRV records keep priority, weight, port and target.
	f.set("_http._tcp.svc.test.", dnsmessage.TypeSRV,
		rrSRV("_http._tcp.svc.test.", 60, 10, 3, 8080, "a.svc.test."),
		rrSRV("_http._tcp.svc.test.", 20, 20, 1, 9090, "b.svc.test."))
	srvs, ttl, err := c.LookupSRVTTL(ctx, "_http._tcp.svc.test")
	if err != nil || len(srvs) != 2 || ttl != 20*time.Second ||
		*srvs[0] != (net.SRV{Target: "a.svc.test.", Port: 8080, Priority: 10, Weight: 3}) {
		t.Fatalf("SRV: %v %v %v", srvs, ttl, err)
	}

	// NXDOMAIN is reported as ErrNoSuchHost; an empty answer is an error too.
	f.setNX("gone.test.")
	if _, _, err := c.LookupIPTTL(ctx, "gone.test"); !errors.Is(err, ErrNoSuchHost) {
		t.Fatalf("NXDOMAIN: %v", err)
	}
	if _, _, err := c.LookupIPTTL(ctx, "empty.test"); err == nil {
		t.Fatal("empty answer: no error")
	}

	// A truncated UDP reply is retried over TCP.
	f.setTruncate(true)
	ips, _, err = c.LookupIPTTL(ctx, "svc.test")
	if err != nil || len(ips) != 2 || len(f.times("svc.test.", dnsmessage.TypeA, "tcp")) != 1 {
		t.Fatalf("truncation: %v %v tcp=%d", ips, err, len(f.times("svc.test.", dnsmessage.TypeA, "tcp")))
	}

	// IP literals need no query.
	if ips, ttl, err := c.LookupIPTTL(ctx, "::1"); err != nil || len(ips) != 1 || ttl != TTLUnknown {
		t.Fatalf("literal: %v %v %v", ips, ttl, err)
	}
}

func TestDNSClientFailover(t *testing.T) {
	f := newFakeDNS(t)
	f.set("svc.test.", dnsmessage.TypeA, rrA("svc.test.", 30, "127.0.0.1"))
	// A closed loopback port first: its timeout (or ICMP refusal) moves on.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	c := &DNSClient{Servers: []string{dead, f.addr}, Timeout: 200 * time.Millisecond}
	if ips, _, err := c.LookupIPTTL(lookupCtx(t), "svc.test"); err != nil || len(ips) != 1 {
		t.Fatalf("failover: %v %v", ips, err)
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	conf := "# comment\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\n" +
		"domain old.example\nsearch ns.svc.cluster.local svc.cluster.local. ; trailing\noptions ndots:5 rotate\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c := readResolvConf(path)
	want := &resolvConf{
		servers: []string{"10.0.0.53:53", "[fe80::1%eth0]:53"},
		search:  []string{"ns.svc.cluster.local", "svc.cluster.local"},
		ndots:   5,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed %+v", c)
	}
	// Names with a dot are absolute; single labels go through the search list.
	if got := c.candidates("db.other"); !slices.Equal(got, []string{"db.other."}) {
		t.Fatalf("dotted: %v", got)
	}
	if got := c.candidates("db"); !slices.Equal(got, []string{"db.ns.svc.cluster.local.", "db.svc.cluster.local.", "db."}) {
		t.Fatalf("single label: %v", got)
	}
	if got := (&resolvConf{ndots: 0, search: []string{"x"}}).candidates("db"); !slices.Equal(got, []string{"db."}) {
		t.Fatalf("ndots:0: %v", got)
	}
	// No nameserver lines (or no file): the local fallback.
	if c := readResolvConf(filepath.Join(dir, "missing")); !slices.Equal(c.servers, []string{"127.0.0.1:53"}) {
		t.Fatalf("fallback: %v", c.servers)
	}
}

func TestDNSRefreshSchedule(t *testing.T) {
	refresh := 30 * time.Second
	for _, c := range []struct{ ttl, refresh, want time.Duration }{
		{TTLUnknown, refresh, refresh},
		{5 * time.Second, refresh, 5 * time.Second},
		{time.Hour, refresh, refresh},
		{0, refresh, time.Second}, // floor
		{0, 20 * time.Millisecond, 20 * time.Millisecond},
	} {
		if got := dnsRefreshAfter(c.ttl, c.refresh); got != c.want {
			t.Errorf("dnsRefreshAfter(%v, %v) = %v, want %v", c.ttl, c.refresh, got, c.want)
		}
	}
	var b time.Duration
	var seq []time.Duration
	for range 7 {
		b = nextDNSBackoff(b, refresh)
		seq = append(seq, b)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(seq, want) {
		t.Fatalf("backoff %v", seq)
	}
}

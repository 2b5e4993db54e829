package upstream

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// fakeResolver answers from memory; it never touches the network.
type fakeResolver struct {
	mu    sync.Mutex
	ips   []net.IPAddr
	srvs  []*net.SRV
	err   error
	calls int
}

func (f *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]net.IPAddr(nil), f.ips...), f.err
}

func (f *fakeResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return "", append([]*net.SRV(nil), f.srvs...), f.err
}

func (f *fakeResolver) set(fn func(f *fakeResolver)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeResolver) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func addrList(u *Upstream) string {
	s := ""
	for _, e := range u.Endpoints() {
		s += e.Address + "/" + strconv.Itoa(int(e.Weight)) + " "
	}
	return s
}

func TestDNSAddressDiscovery(t *testing.T) {
	srv := delayServer(t, 0)
	_, port, _ := net.SplitHostPort(srv)
	p, _ := strconv.Atoi(port)
	fr := &fakeResolver{ips: []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}}}
	def := ir.Upstream{Name: "d", UpstreamTraffic: ir.UpstreamTraffic{
		DNS: &ir.DNSDiscovery{Name: "svc.test", Port: int32(p), RefreshMillis: 20}}}
	opts := testOpts()
	opts.Resolver = WithoutTTL(fr)
	r, u := build(t, def, opts)
	waitFor(t, "first answer", func() bool { return len(u.Endpoints()) == 1 })
	if addr, _ := do(t, u, newReq(t, "GET", "/"), nil); addr != srv {
		t.Fatalf("went to %s", addr)
	}
	kept := u.Endpoints()[0]
	// A second address appears: the first endpoint (and its pool) is kept.
	fr.set(func(f *fakeResolver) { f.ips = append(f.ips, net.IPAddr{IP: net.IPv4(127, 0, 0, 9)}) })
	waitFor(t, "second address", func() bool { return len(u.Endpoints()) == 2 })
	if u.Endpoints()[0] != kept || kept.pool.idleLen() != 1 {
		t.Fatal("remaining endpoint was replaced")
	}
	// Failures and empty answers keep the last answer.
	fr.set(func(f *fakeResolver) { f.err = errors.New("SERVFAIL") })
	n := fr.count()
	waitFor(t, "failed lookups", func() bool { return fr.count() > n+2 })
	fr.set(func(f *fakeResolver) { f.err, f.ips = nil, nil })
	n = fr.count()
	waitFor(t, "empty lookups", func() bool { return fr.count() > n+2 })
	if len(u.Endpoints()) != 2 {
		t.Fatalf("lost the last answer: %s", addrList(u))
	}
	// The address set shrinks; the removed endpoint's pool is closed.
	fr.set(func(f *fakeResolver) { f.ips = []net.IPAddr{{IP: net.IPv4(127, 0, 0, 9)}} })
	waitFor(t, "shrink", func() bool { return len(u.Endpoints()) == 1 })
	if kept.pool.idleLen() != 0 {
		t.Fatal("removed endpoint kept its idle connections")
	}
	// Retire stops the goroutine.
	r.Release(nil)
	time.Sleep(30 * time.Millisecond) // a lookup already running may finish
	n = fr.count()
	time.Sleep(100 * time.Millisecond) // five refresh intervals
	if c := fr.count(); c > n+1 {
		t.Fatalf("lookups continue after retire: %d → %d", n, c)
	}
}

func TestDNSSRVDiscovery(t *testing.T) {
	a, b, backup := delayServer(t, 0), delayServer(t, 0), delayServer(t, 0)
	srv := func(addr string, prio, weight uint16) *net.SRV {
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		return &net.SRV{Target: "127.0.0.1.", Port: uint16(p), Priority: prio, Weight: weight}
	}
	fr := &fakeResolver{srvs: []*net.SRV{srv(a, 10, 1), srv(b, 10, 3), srv(backup, 20, 5)}}
	def := ir.Upstream{Name: "s", Algorithm: AlgRoundRobin, UpstreamTraffic: ir.UpstreamTraffic{
		DNS: &ir.DNSDiscovery{Name: "_http._tcp.svc.test", SRV: true, RefreshMillis: 20}}}
	opts := testOpts()
	opts.Resolver = WithoutTTL(fr)
	_, u := build(t, def, opts)
	waitFor(t, "srv answer", func() bool { return len(u.Endpoints()) == 2 })
	count := map[string]int{}
	for range 40 {
		addr, _ := do(t, u, newReq(t, "GET", "/"), nil)
		count[addr]++
	}
	if count[a] != 10 || count[b] != 30 {
		t.Fatalf("SRV weights not honoured: %v", count)
	}
	// The preferred priority disappears: the backup takes over.
	fr.set(func(f *fakeResolver) { f.srvs = f.srvs[2:] })
	waitFor(t, "backup", func() bool { return len(u.Endpoints()) == 1 })
	if addr, _ := do(t, u, newReq(t, "GET", "/"), nil); addr != backup {
		t.Fatalf("went to %s", addr)
	}
}

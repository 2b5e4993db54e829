package upstream

import (
	"bufio"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"portico.dev/portico/internal/ir"
)

// These tests run DNS discovery with the default TTL-aware DNSClient against
// the fake DNS server of dnsclient_test.go (never any real nameserver).

func dnsOpts(f *fakeDNS) Options {
	o := testOpts()
	o.DNSServers = []string{f.addr}
	return o
}

func portOf(t *testing.T, addr string) uint16 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

// TestDNSDiscoveryTTL: a short TTL drives re-resolution (not sooner than the
// 1 s floor) although the refresh interval is long; a long TTL is capped by
// the refresh interval.
func TestDNSDiscoveryTTL(t *testing.T) {
	f := newFakeDNS(t)
	f.set("short.test.", dnsmessage.TypeA, rrA("short.test.", 1, "127.0.0.1"))
	f.set("long.test.", dnsmessage.TypeA, rrA("long.test.", 3600, "127.0.0.1"))
	_, short := buildDef(t, dnsOpts(f), ir.Upstream{Name: "short", UpstreamTraffic: ir.UpstreamTraffic{
		DNS: &ir.DNSDiscovery{Name: "short.test", Port: 80, RefreshMillis: 60_000}}})
	_, long := buildDef(t, dnsOpts(f), ir.Upstream{Name: "long", UpstreamTraffic: ir.UpstreamTraffic{
		DNS: &ir.DNSDiscovery{Name: "long.test", Port: 80, RefreshMillis: 30}}})
	waitFor(t, "answers", func() bool { return len(short.Endpoints()) == 1 && len(long.Endpoints()) == 1 })
	if got := short.Endpoints()[0].Address; got != "127.0.0.1:80" {
		t.Fatalf("endpoint %s", got)
	}
	waitFor(t, "capped re-resolution", func() bool { return f.count("long.test.", dnsmessage.TypeA) >= 5 })
	waitFor(t, "TTL re-resolution", func() bool { return f.count("short.test.", dnsmessage.TypeA) >= 2 })
	ts := f.times("short.test.", dnsmessage.TypeA, "udp")
	if gap := ts[1].Sub(ts[0]); gap < 900*time.Millisecond || gap > 2500*time.Millisecond {
		t.Fatalf("TTL 1 s re-resolved after %v", gap)
	}
}

// TestDNSDiscoveryAAAAAndNXDOMAIN: AAAA-only answers become [ip]:port
// endpoints; NXDOMAIN keeps the last answer (with retries) until the name
// comes back; a truncated answer is fetched over TCP.
func TestDNSDiscoveryAAAAAndNXDOMAIN(t *testing.T) {
	f := newFakeDNS(t)
	f.set("v6.test.", dnsmessage.TypeAAAA, rrAAAA("v6.test.", 0, "::1"))
	_, u := buildDef(t, dnsOpts(f), ir.Upstream{Name: "v6", UpstreamTraffic: ir.UpstreamTraffic{
		DNS: &ir.DNSDiscovery{Name: "v6.test", Port: 8080, RefreshMillis: 20}}})
	waitFor(t, "AAAA answer", func() bool { return addrList(u) == "[::1]:8080/1 " })
	kept := u.Endpoints()[0]

	f.setNX("v6.test.")
	n := f.count("v6.test.", dnsmessage.TypeAAAA)
	waitFor(t, "NXDOMAIN retries", func() bool { return f.count("v6.test.", dnsmessage.TypeAAAA) > n+3 })
	if len(u.Endpoints()) != 1 || u.Endpoints()[0] != kept {
		t.Fatalf("lost the last answer: %s", addrList(u))
	}

	f.set("v6.test.", dnsmessage.TypeA, rrA("v6.test.", 0, "127.0.0.1"))
	f.set("v6.test.", dnsmessage.TypeAAAA, rrAAAA("v6.test.", 0, "::1"))
	f.setTruncate(true)
	waitFor(t, "answer over TCP", func() bool { return len(u.Endpoints()) == 2 })
	if len(f.times("v6.test.", dnsmessage.TypeA, "tcp")) == 0 {
		t.Fatal("truncated answer not retried over TCP")
	}
	if u.Endpoints()[1] != kept {
		t.Fatal("remaining endpoint was replaced")
	}
}

// TestDNSDiscoverySRVServer: SRV answers become target:port endpoints
// weighted by the record weight, best priority only; traffic follows them.
func TestDNSDiscoverySRVServer(t *testing.T) {
	f := newFakeDNS(t)
	a, b, backup := delayServer(t, 0), delayServer(t, 0), delayServer(t, 0)
	const name = "_http._tcp.svc.test."
	f.set(name, dnsmessage.TypeSRV,
		rrSRV(name, 60, 10, 1, portOf(t, a), "127.0.0.1."),
		rrSRV(name, 60, 10, 3, portOf(t, b), "127.0.0.1."),
		rrSRV(name, 60, 20, 5, portOf(t, backup), "127.0.0.1."))
	_, u := buildDef(t, dnsOpts(f), ir.Upstream{Name: "s", Algorithm: AlgRoundRobin, UpstreamTraffic: ir.UpstreamTraffic{
		DNS: &ir.DNSDiscovery{Name: "_http._tcp.svc.test", SRV: true, RefreshMillis: 20}}})
	waitFor(t, "srv answer", func() bool { return len(u.Endpoints()) == 2 })
	count := map[string]int{}
	for range 40 {
		addr, _ := do(t, u, newReq(t, "GET", "/"), nil)
		count[addr]++
	}
	if count[a] != 10 || count[b] != 30 {
		t.Fatalf("SRV weights not honoured: %v (%s)", count, addrList(u))
	}
	f.set(name, dnsmessage.TypeSRV, rrSRV(name, 60, 20, 5, portOf(t, backup), "127.0.0.1."))
	waitFor(t, "backup", func() bool { return addrList(u) == backup+"/5 " })
}

// TestDNSAddedEndpointHealthChecked: an endpoint DNS adds after the upstream
// was built is actively checked (an unhealthy one becomes unavailable), and
// checks stop for an endpoint DNS removes.
func TestDNSAddedEndpointHealthChecked(t *testing.T) {
	f := newFakeDNS(t)
	good := delayServer(t, 0)
	var badProbes atomic.Int32
	bad := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, _, _, ok := readReq(br); !ok {
				return
			}
			badProbes.Add(1)
			if _, err := c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")); err != nil {
				return
			}
		}
	}).addr()
	const name = "_http._tcp.hc.test."
	goodRR := rrSRV(name, 0, 10, 1, portOf(t, good), "127.0.0.1.")
	f.set(name, dnsmessage.TypeSRV, goodRR)
	def := ir.Upstream{Name: "hc", UpstreamTraffic: ir.UpstreamTraffic{
		DNS: &ir.DNSDiscovery{Name: name, SRV: true, RefreshMillis: 20},
		HealthCheck: &ir.HealthCheck{Active: &ir.ActiveCheck{
			Type: ir.CheckHTTP, Path: "/healthz", IntervalMillis: 10, HealthyThreshold: 1, UnhealthyThreshold: 1}},
	}}
	_, u := buildDef(t, dnsOpts(f), def)
	waitFor(t, "first answer", func() bool { return len(u.Endpoints()) == 1 })

	f.set(name, dnsmessage.TypeSRV, goodRR, rrSRV(name, 0, 10, 1, portOf(t, bad), "127.0.0.1."))
	waitFor(t, "added endpoint", func() bool { return len(u.Endpoints()) == 2 })
	var added *Endpoint
	for _, e := range u.Endpoints() {
		if e.Address == bad {
			added = e
		}
	}
	waitFor(t, "added endpoint checked and down", func() bool { return added != nil && !added.Available() })
	for range 10 {
		if addr, _ := do(t, u, newReq(t, "GET", "/"), nil); addr != good {
			t.Fatalf("went to %s", addr)
		}
	}

	f.set(name, dnsmessage.TypeSRV, goodRR)
	waitFor(t, "removed endpoint", func() bool { return len(u.Endpoints()) == 1 })
	time.Sleep(30 * time.Millisecond) // a probe already running may finish
	n := badProbes.Load()
	time.Sleep(100 * time.Millisecond) // ten check intervals
	if got := badProbes.Load(); got > n+1 {
		t.Fatalf("removed endpoint still probed: %d → %d", n, got)
	}
}

package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"portico.dev/portico/internal/ir"
)

// DNS discovery (ir.DNSDiscovery). Each DNS upstream runs one goroutine,
// started when Registry.Build hands the upstream out and stopped when it is
// retired. It resolves the name at once and again when the answer expires:
// after min(record TTL, RefreshMillis) (default 30 s), but never sooner than
// 1 s on account of a TTL; a resolver that cannot report TTLs is simply
// polled every RefreshMillis. The default resolver is a DNSClient reading
// /etc/resolv.conf (or the nameservers in Options.DNSServers). A failed
// lookup or an empty answer keeps the last answer and is retried after 1 s,
// doubling up to RefreshMillis. A or AAAA answers become ip:Port endpoints
// of weight 1; SRV answers become target:port endpoints weighted by the
// record weight, using only the records of the best (lowest) priority. A new
// answer is installed with one atomic swap; endpoints whose address and
// weight remain keep their connection pools, balancer state and health,
// removed ones have their idle connections closed, and active health checks
// follow the new set.

// Resolver looks names up for DNS discovery and reports how long the answer
// may be used: ttl is the smallest record TTL, or TTLUnknown. *DNSClient
// implements it; WithoutTTL adapts resolvers that do not know TTLs, such as
// *net.Resolver. Tests inject one through Options.Resolver.
type Resolver interface {
	// LookupIPTTL returns host's addresses (A and AAAA).
	LookupIPTTL(ctx context.Context, host string) (ips []netip.Addr, ttl time.Duration, err error)
	// LookupSRVTTL returns the SRV records of name, e.g. "_http._tcp.svc.example".
	LookupSRVTTL(ctx context.Context, name string) (srvs []*net.SRV, ttl time.Duration, err error)
}

// PlainResolver is a resolver without TTLs; *net.Resolver implements it.
type PlainResolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// WithoutTTL adapts r to Resolver. Its answers carry TTLUnknown, so DNS
// discovery re-resolves them every RefreshMillis.
func WithoutTTL(r PlainResolver) Resolver { return plainResolver{r} }

type plainResolver struct{ r PlainResolver }

func (p plainResolver) LookupIPTTL(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	addrs, err := p.r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, 0, err
	}
	ips := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			ips = append(ips, ip.Unmap().WithZone(a.Zone))
		}
	}
	return ips, TTLUnknown, nil
}

func (p plainResolver) LookupSRVTTL(ctx context.Context, name string) ([]*net.SRV, time.Duration, error) {
	_, srvs, err := p.r.LookupSRV(ctx, "", "", name)
	return srvs, TTLUnknown, err
}

const (
	defaultDNSRefresh = 30 * time.Second
	maxLookupTime     = 10 * time.Second
	// minDNSRefresh is the floor on TTL-driven re-resolution (and the first
	// retry after a failure), so TTL 0 answers do not hammer the nameserver.
	minDNSRefresh = time.Second
)

func (u *Upstream) startDNS() {
	r := u.opts.Resolver
	if r == nil {
		r = &DNSClient{Servers: u.opts.DNSServers}
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.stopDNS = cancel
	go u.dnsLoop(ctx, r)
}

func (u *Upstream) dnsLoop(ctx context.Context, r Resolver) {
	defer func() {
		if r := recover(); r != nil {
			u.opts.Logger.Error("dns discovery panicked", "upstream", u.def.Name, "panic", r)
		}
	}()
	refresh := defaultDNSRefresh
	if ms := u.def.DNS.RefreshMillis; ms > 0 {
		refresh = time.Duration(ms) * time.Millisecond
	}
	var backoff time.Duration // 0 after a success
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		next := refresh
		if ttl, err := u.resolve(ctx, r, min(refresh, maxLookupTime)); err != nil {
			backoff = nextDNSBackoff(backoff, refresh)
			next = backoff
		} else {
			backoff = 0
			next = dnsRefreshAfter(ttl, refresh)
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dnsRefreshAfter is how long an answer with the given TTL is used:
// min(ttl, refresh), but at least minDNSRefresh unless refresh itself is
// shorter; TTLUnknown means refresh.
func dnsRefreshAfter(ttl, refresh time.Duration) time.Duration {
	if ttl < 0 {
		return refresh
	}
	return max(min(ttl, refresh), min(minDNSRefresh, refresh))
}

// nextDNSBackoff is the pause before retrying a failed lookup: minDNSRefresh
// at first, then doubling, never more than refresh.
func nextDNSBackoff(prev, refresh time.Duration) time.Duration {
	if prev <= 0 {
		return min(minDNSRefresh, refresh)
	}
	return min(2*prev, refresh)
}

// resolve runs one lookup and installs its answer; it returns the answer's TTL.
func (u *Upstream) resolve(ctx context.Context, r Resolver, timeout time.Duration) (time.Duration, error) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	list, ttl, err := u.lookup(lctx, r)
	if err == nil && len(list) == 0 {
		err = errors.New("empty answer")
	}
	if err != nil {
		if ctx.Err() == nil {
			u.opts.Logger.Warn("dns discovery failed, keeping the last answer",
				"upstream", u.def.Name, "name", u.def.DNS.Name, "error", err)
		}
		return 0, err
	}
	u.applyDNS(list)
	return ttl, nil
}

// lookup returns the answer as endpoints sorted by address, without
// duplicates, and its TTL.
func (u *Upstream) lookup(ctx context.Context, r Resolver) ([]ir.Endpoint, time.Duration, error) {
	d := u.def.DNS
	var out []ir.Endpoint
	var ttl time.Duration
	if d.SRV {
		srvs, t, err := r.LookupSRVTTL(ctx, d.Name)
		if err != nil {
			return nil, 0, err
		}
		ttl = t
		best := -1
		for _, s := range srvs {
			if best < 0 || int(s.Priority) < best {
				best = int(s.Priority)
			}
		}
		for _, s := range srvs {
			if int(s.Priority) == best {
				host := strings.TrimSuffix(s.Target, ".")
				out = append(out, ir.Endpoint{Address: net.JoinHostPort(host, strconv.Itoa(int(s.Port))),
					Weight: max(int32(s.Weight), 1)})
			}
		}
	} else {
		ips, t, err := r.LookupIPTTL(ctx, d.Name)
		if err != nil {
			return nil, 0, err
		}
		ttl = t
		port := strconv.Itoa(int(u.dnsPort()))
		for _, ip := range ips {
			out = append(out, ir.Endpoint{Address: net.JoinHostPort(ip.String(), port), Weight: 1})
		}
	}
	slices.SortFunc(out, func(a, b ir.Endpoint) int { return strings.Compare(a.Address, b.Address) })
	return slices.CompactFunc(out, func(a, b ir.Endpoint) bool { return a.Address == b.Address }), ttl, nil
}

// dnsPort is the port for A/AAAA answers: DNSDiscovery.Port, else the
// protocol's default.
func (u *Upstream) dnsPort() int32 {
	if p := u.def.DNS.Port; p > 0 {
		return p
	}
	if u.proto == ir.UpstreamHTTPS || u.proto == ir.UpstreamH2 {
		return 443
	}
	return 80
}

// applyDNS swaps in the endpoints of list, keeping those that remain.
func (u *Upstream) applyDNS(list []ir.Endpoint) {
	cur := u.Endpoints()
	if slices.EqualFunc(cur, list, func(e *Endpoint, d ir.Endpoint) bool {
		return e.Address == d.Address && e.Weight == d.Weight
	}) {
		return
	}
	old := make(map[string]*Endpoint, len(cur))
	for _, e := range cur {
		old[e.Address] = e
	}
	now := nanotime()
	eps := make([]*Endpoint, 0, len(list))
	for _, d := range list {
		if e := old[d.Address]; e != nil && e.Weight == d.Weight {
			eps = append(eps, e)
			delete(old, d.Address)
			continue
		}
		e, err := u.newEndpoint(d)
		if err != nil {
			u.opts.Logger.Warn("dns discovery: bad address", "upstream", u.def.Name, "error", fmt.Sprint(err))
			continue
		}
		if u.def.SlowStartMillis > 0 && len(cur) > 0 {
			e.ramp.from.Store(now)
		}
		eps = append(eps, e)
	}
	u.setEndpoints(eps)
	u.endpointsChanged()
	for _, e := range old {
		e.pool.closeAll()
	}
	if u.retired.Load() { // retire ran during the swap and missed the new set
		for _, e := range eps {
			e.pool.closeAll()
		}
	}
}

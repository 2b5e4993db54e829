package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"portico.dev/portico/internal/ir"
)

// DNS discovery (ir.DNSDiscovery). Each DNS upstream runs one goroutine,
// started when Registry.Build hands the upstream out and stopped when it is
// retired. It resolves the name at once and then every RefreshMillis (default
// 30 s): Go's resolver does not expose record TTLs, so the refresh interval
// is the only bound on how stale an answer gets. A or AAAA answers become
// ip:Port endpoints of weight 1; SRV answers become target:port endpoints
// weighted by the record weight, using only the records of the best
// (lowest) priority. A failed lookup or an empty answer keeps the last
// answer. A new answer is installed with one atomic swap; endpoints whose
// address and weight remain keep their connection pools, balancer state and
// health, and removed ones have their idle connections closed.

// Resolver looks names up for DNS discovery; *net.Resolver implements it.
// Tests inject a fake one through Options.Resolver.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

const (
	defaultDNSRefresh = 30 * time.Second
	maxLookupTime     = 10 * time.Second
)

func (u *Upstream) startDNS() {
	ctx, cancel := context.WithCancel(context.Background())
	u.stopDNS = cancel
	go u.dnsLoop(ctx)
}

func (u *Upstream) dnsLoop(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			u.opts.Logger.Error("dns discovery panicked", "upstream", u.def.Name, "panic", r)
		}
	}()
	every := defaultDNSRefresh
	if ms := u.def.DNS.RefreshMillis; ms > 0 {
		every = time.Duration(ms) * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		u.resolve(ctx, min(every, maxLookupTime))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// resolve runs one lookup and installs its answer.
func (u *Upstream) resolve(ctx context.Context, timeout time.Duration) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	list, err := u.lookup(lctx)
	if err == nil && len(list) == 0 {
		err = errors.New("empty answer")
	}
	if err != nil {
		if ctx.Err() == nil {
			u.opts.Logger.Warn("dns discovery failed, keeping the last answer",
				"upstream", u.def.Name, "name", u.def.DNS.Name, "error", err)
		}
		return
	}
	u.applyDNS(list)
}

// lookup returns the answer as endpoints sorted by address, without duplicates.
func (u *Upstream) lookup(ctx context.Context) ([]ir.Endpoint, error) {
	d := u.def.DNS
	r := u.opts.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	var out []ir.Endpoint
	if d.SRV {
		_, srvs, err := r.LookupSRV(ctx, "", "", d.Name)
		if err != nil {
			return nil, err
		}
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
		ips, err := r.LookupIPAddr(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		port := strconv.Itoa(int(u.dnsPort()))
		for _, ip := range ips {
			out = append(out, ir.Endpoint{Address: net.JoinHostPort(ip.String(), port), Weight: 1})
		}
	}
	slices.SortFunc(out, func(a, b ir.Endpoint) int { return strings.Compare(a.Address, b.Address) })
	return slices.CompactFunc(out, func(a, b ir.Endpoint) bool { return a.Address == b.Address }), nil
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
	for _, e := range old {
		e.pool.closeAll()
	}
	if u.retired.Load() { // retire ran during the swap and missed the new set
		for _, e := range eps {
			e.pool.closeAll()
		}
	}
}

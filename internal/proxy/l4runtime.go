package proxy

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy/l4"
	"portico.dev/portico/internal/proxy/proxyproto"
	"portico.dev/portico/internal/proxy/upstream"
)

// L4 (TCP, TLS passthrough, UDP) listeners in the Runtime. Apply calls these in
// the same order as for HTTP listeners: compile (can fail), bind (can fail;
// undone on failure), commit (cannot fail).

// l4Plan is what Apply prepared for L4 listeners and PROXY protocol.
type l4Plan struct {
	states   map[string]*l4.State
	defs     map[string]*ir.Listener
	policies map[string]*proxyproto.Policy // HTTP(S) listeners that accept PROXY headers
	added    map[string]*l4.Listener
}

func isL4(p ir.Protocol) bool { return p == ir.TCP || p == ir.TLS || p == ir.UDP }

// compileL4 compiles every L4 listener of s, and the PROXY protocol policy of
// every HTTP(S) listener that has one.
func (rt *Runtime) compileL4(s *ir.Snapshot, ups map[string]*upstream.Upstream) (*l4Plan, error) {
	p := &l4Plan{
		states: map[string]*l4.State{}, defs: map[string]*ir.Listener{},
		policies: map[string]*proxyproto.Policy{}, added: map[string]*l4.Listener{},
	}
	byListener := map[string][]ir.StreamRoute{}
	for _, sr := range s.StreamRoutes {
		byListener[sr.Listener] = append(byListener[sr.Listener], sr)
	}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		if !isL4(l.Protocol) {
			if l.ProxyProtocol != nil {
				pol, err := proxyproto.NewPolicy(l.ProxyProtocol.TrustedCIDRs, 0)
				if err != nil {
					return nil, fmt.Errorf("proxy: listener %q: %w", l.Name, err)
				}
				p.policies[l.Name] = pol
			}
			continue
		}
		st, err := l4.Compile(l, byListener[l.Name], ups)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		p.states[l.Name], p.defs[l.Name] = st, l
	}
	return p, nil
}

// bindL4 opens the sockets of L4 listeners that are new (or whose network
// changed). On error it closes what it opened; the error names the Gateway
// listeners that asked for the socket.
func (rt *Runtime) bindL4(p *l4Plan) error {
	for name, l := range p.defs {
		if old := rt.streams[name]; old != nil && old.Network() == l4.Network(l.Protocol) {
			continue
		}
		ln, err := l4.Listen(name, l.Address, int(l.Port), l.Protocol, rt.l4Options())
		if err != nil {
			for _, a := range p.added {
				_ = a.Close()
			}
			p.added = map[string]*l4.Listener{}
			addr := net.JoinHostPort(l.Address, strconv.Itoa(int(l.Port)))
			return fmt.Errorf("proxy: listener %q (gateway %s): cannot listen on %s/%s: %w",
				name, strings.Join(l.Gateways, ", "), l4.Network(l.Protocol), addr, err)
		}
		p.added[name] = ln
	}
	return nil
}

func (rt *Runtime) l4Options() l4.Options {
	return l4.Options{Logger: rt.log, DialTimeout: rt.opts.Upstream.DialTimeout}
}

// commitL4 swaps in the new L4 states, starts added listeners, drains removed
// ones, and sets the PROXY policies of HTTP listeners (before any is started).
func (rt *Runtime) commitL4(p *l4Plan, addedHTTP map[string]*httpListener) {
	for name, hl := range rt.listeners {
		hl.proxy.Store(p.policies[name])
	}
	for name, hl := range addedHTTP {
		hl.proxy.Store(p.policies[name])
	}
	for name, st := range p.states {
		if ln := p.added[name]; ln != nil {
			if old := rt.streams[name]; old != nil {
				rt.drainL4(old) // network changed: the old socket goes
			}
			ln.Store(st)
			ln.Start()
			rt.streams[name] = ln
			continue
		}
		rt.streams[name].Store(st)
	}
	for name, ln := range rt.streams {
		if p.states[name] == nil {
			delete(rt.streams, name)
			rt.drainL4(ln)
		}
	}
}

// drainL4 stops an L4 listener from accepting and gives its open connections
// DrainTimeout to finish, in the background.
func (rt *Runtime) drainL4(ln *l4.Listener) {
	rt.draining.Add(1)
	go func() {
		defer rt.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), rt.opts.DrainTimeout)
		defer cancel()
		_ = ln.Shutdown(ctx)
		rt.log.Info("listener removed", "listener", ln.Name())
	}()
}

// shutdownL4 shuts every L4 listener down in parallel, bounded by ctx.
func (rt *Runtime) shutdownL4(ctx context.Context, ls map[string]*l4.Listener) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(ls))
	for _, ln := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ln.Shutdown(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// acceptProxied reads the PROXY header of a connection to an HTTP listener (in
// its own goroutine: the header may be slow to come) and then serves it.
func (hl *httpListener) acceptProxied(c net.Conn, pol *proxyproto.Policy) {
	pc, err := pol.Accept(c)
	if err != nil {
		hl.rt.log.Debug("PROXY header refused", "listener", hl.name, "error", err)
		_ = c.Close()
		return
	}
	hl.serveConn(pc, false)
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/observe"
	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/proxy/conntrack"
	"portico.dev/portico/internal/proxy/l4"
	"portico.dev/portico/internal/proxy/upstream"
)

// Options configure a Runtime. Zero values pick sensible defaults.
type Options struct {
	// Logger receives operational messages (never per-request lines). Default: discard.
	Logger *slog.Logger
	// AccessLog receives one line per request; nil turns access logging off.
	AccessLog *observe.AccessLog
	// Metrics receives request, connection and reload metrics; nil turns them off.
	Metrics *observe.Metrics
	// Upstream tunes connection pools and dialing for every upstream.
	Upstream upstream.Options
	// DrainTimeout bounds how long a listener removed by a swap keeps serving the
	// requests it had accepted. Default 30s.
	DrainTimeout time.Duration
}

// Runtime is the live data plane of one process: its listeners, upstreams and the
// snapshot in force. Apply and Shutdown may be called from any goroutine.
type Runtime struct {
	opts     Options
	log      *slog.Logger
	registry *upstream.Registry
	ids      requestIDs

	mu        sync.Mutex // serialises Apply and Shutdown
	listeners map[string]*httpListener
	streams   map[string]*l4.Listener // TCP, TLS and UDP listeners (l4runtime.go)
	upstreams map[string]*upstream.Upstream
	certs     certCache
	draining  sync.WaitGroup
	closed    bool

	snap atomic.Pointer[ir.Snapshot]
	// routeRefs counts the occurrences of each route in the snapshot in force (with
	// metrics on), so that a route's series are forgotten when its last one goes.
	routeRefs map[routeKey]int
	// hijacked tracks upgraded (WebSocket) connections, which http.Server forgets once
	// hijacked, so Shutdown can wait for them and close them at the deadline.
	hijacked conntrack.Set[io.Closer]

	// shared is given to every plugin instance (plugin.Env.Shared): state kept
	// there (rate-limit counters, clients) survives reloads.
	shared *plugin.Shared
}

// New returns a Runtime with no listeners; the first Apply opens them.
func New(opts Options) *Runtime {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Upstream.Logger == nil {
		opts.Upstream.Logger = opts.Logger
	}
	rt := &Runtime{
		opts:      opts,
		log:       opts.Logger,
		registry:  upstream.NewRegistry(opts.Upstream),
		listeners: map[string]*httpListener{},
		streams:   map[string]*l4.Listener{},
		certs:     certCache{},
		shared:    &plugin.Shared{},
	}
	rt.ids.init()
	if opts.Metrics != nil {
		opts.Metrics.Registry.MustRegister(newHealthCollector(rt))
	}
	return rt
}

// Snapshot returns the snapshot in force, or nil before the first successful Apply.
func (rt *Runtime) Snapshot() *ir.Snapshot { return rt.snap.Load() }

// ErrShutdown is returned by Apply after Shutdown.
var ErrShutdown = errors.New("proxy: runtime is shut down")

// Apply validates and compiles s, binds the sockets of listeners it adds, and then
// swaps everything in at once. It is all-or-nothing: on any error the previous
// configuration keeps serving unchanged, sockets bound for the attempt are closed,
// and the error names the listener, route, certificate or upstream at fault.
//
// A snapshot must not be modified once applied: the next Apply neither validates nor
// compiles again the virtual hosts whose Routes slice it shares with the snapshot in
// force (as a snapshot rebuilt from a delta does), when their compiled form still holds
// (no plugins, same upstreams).
//
// Listeners with an L4 protocol (TCP, TLS, UDP) are served by internal/proxy/l4
// and go through the same steps (see l4runtime.go).
func (rt *Runtime) Apply(s *ir.Snapshot) (err error) {
	defer func() {
		if err != nil {
			rt.opts.Metrics.ReloadFailed()
		}
	}()
	if s == nil {
		return errors.New("proxy: nil snapshot")
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return ErrShutdown
	}
	// What s shares with the snapshot in force was validated with it.
	if err := s.ValidateFrom(rt.snap.Load()); err != nil {
		return err
	}

	ups, err := rt.registry.Build(s.Upstreams)
	if err != nil {
		rt.registry.Release(rt.upstreams)
		return fmt.Errorf("proxy: upstreams: %w", err)
	}
	certs, err := rt.certs.load(s.Certificates)
	if err != nil {
		rt.registry.Release(rt.upstreams)
		return err
	}
	pb, err := rt.buildPlugins(s)
	if err != nil {
		rt.registry.Release(rt.upstreams)
		return err
	}
	defer func() {
		if err != nil {
			pb.gen.close() // never used by a request
		}
	}()
	states := make(map[string]*listenerState, len(s.Listeners))
	for i := range s.Listeners {
		l := &s.Listeners[i]
		if l.Protocol != ir.HTTP && l.Protocol != ir.HTTPS {
			continue
		}
		var prev *listenerState
		if hl := rt.listeners[l.Name]; hl != nil {
			prev = hl.state.Load()
		}
		st, err := compileListener(l, ups, certs, rt.opts.Metrics, pb, prev)
		if err != nil {
			rt.registry.Release(rt.upstreams)
			return err
		}
		states[l.Name] = st
	}
	plan, err := rt.compileL4(s, ups)
	if err != nil {
		rt.registry.Release(rt.upstreams)
		return err
	}

	// Bind new sockets last: every failure before this point left nothing to undo.
	added := map[string]*httpListener{}
	for name, st := range states {
		if rt.listeners[name] != nil {
			continue
		}
		hl, err := rt.bind(st)
		if err != nil {
			for _, a := range added {
				_ = a.ln.Close()
			}
			rt.registry.Release(rt.upstreams)
			return err
		}
		added[name] = hl
	}
	if err := rt.bindL4(plan); err != nil {
		for _, a := range added {
			_ = a.ln.Close()
		}
		rt.registry.Release(rt.upstreams)
		return err
	}

	// Commit: nothing below can fail.
	rt.commitL4(plan, added)
	// Each listener state holds a reference on the new plugin generation; a replaced
	// state gives its reference back (the old generation closes once its in-flight
	// requests are done).
	pb.gen.refs.Store(int64(len(states)))
	if len(states) == 0 {
		pb.gen.close()
	}
	for name, st := range states {
		if hl := rt.listeners[name]; hl != nil {
			if old := hl.state.Swap(st); old != nil && old != st {
				old.gen.release()
			}
		}
	}
	for name, hl := range added {
		rt.listeners[name] = hl
		hl.start()
	}
	for name, hl := range rt.listeners {
		if states[name] == nil {
			delete(rt.listeners, name)
			rt.drain(hl)
		}
	}
	rt.forgetMetrics(s)
	rt.upstreams = ups
	rt.registry.Release(ups)
	rt.certs.retain(s.Certificates)
	rt.snap.Store(s)
	rt.opts.Metrics.ReloadSucceeded(s.Version)
	rt.log.Info("configuration applied", "version", s.Version, "listeners", len(states),
		"added", len(added), "l4Listeners", len(plan.states), "l4Added", len(plan.added), "upstreams", len(ups))
	return nil
}

// forgetMetrics drops per-route series of routes the new snapshot no longer has. It
// keeps the number of occurrences of each route in the snapshot in force, and counts
// only the virtual hosts that changed: one whose Routes slice the old snapshot also
// has holds the same routes in both.
func (rt *Runtime) forgetMetrics(s *ir.Snapshot) {
	if rt.opts.Metrics == nil {
		return
	}
	if rt.routeRefs == nil {
		rt.routeRefs = map[routeKey]int{}
	}
	type span struct {
		first *ir.Route
		n     int
	}
	old := rt.snap.Load()
	same := map[span]int{}
	if old != nil {
		for _, l := range old.Listeners {
			for _, vh := range l.VirtualHosts {
				if len(vh.Routes) > 0 {
					same[span{&vh.Routes[0], len(vh.Routes)}]++
				}
			}
		}
	}
	for _, l := range s.Listeners {
		for _, vh := range l.VirtualHosts {
			if len(vh.Routes) == 0 {
				continue
			}
			if sp := (span{&vh.Routes[0], len(vh.Routes)}); same[sp] > 0 {
				same[sp]--
				continue
			}
			for _, r := range vh.Routes {
				rt.routeRefs[routeKey{r.Gateway, r.Name}]++
			}
		}
	}
	if old == nil {
		return
	}
	for _, l := range old.Listeners {
		for _, vh := range l.VirtualHosts {
			if len(vh.Routes) == 0 {
				continue
			}
			if sp := (span{&vh.Routes[0], len(vh.Routes)}); same[sp] > 0 {
				same[sp]-- // gone from the new snapshot
				for _, r := range vh.Routes {
					k := routeKey{r.Gateway, r.Name}
					if rt.routeRefs[k]--; rt.routeRefs[k] <= 0 {
						delete(rt.routeRefs, k)
						rt.opts.Metrics.Forget(r.Gateway, r.Name)
					}
				}
			}
		}
	}
}

// routeKey names a route's metric series.
type routeKey struct{ gw, route string }

// drain stops a listener from accepting and lets its requests finish in the
// background, for at most DrainTimeout.
func (rt *Runtime) drain(hl *httpListener) {
	rt.draining.Add(1)
	go func() {
		defer rt.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), rt.opts.DrainTimeout)
		defer cancel()
		_ = hl.shutdown(ctx)
		hl.state.Load().gen.release()
		rt.log.Info("listener removed", "listener", hl.name)
	}()
}

// Shutdown stops accepting on every listener, lets in-flight requests finish until
// ctx ends, then closes whatever is left (including upgraded connections) and
// releases upstream pools. It returns ctx's error if it had to cut requests short.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	ls := rt.listeners
	rt.listeners = map[string]*httpListener{}
	streams := rt.streams
	rt.streams = map[string]*l4.Listener{}
	rt.mu.Unlock()

	var wg sync.WaitGroup
	errs := make(chan error, len(ls)+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := rt.shutdownL4(ctx, streams); err != nil {
			errs <- err
		}
	}()
	for _, hl := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hl.shutdown(ctx); err != nil {
				errs <- err
			}
			hl.state.Load().gen.release()
		}()
	}
	wg.Wait()
	close(errs)
	err := <-errs
	if err == nil {
		// Upgraded connections are not tracked by http.Server: give them until ctx.
		if !rt.hijacked.WaitEmpty(ctx) {
			err = ctx.Err()
		}
	}
	rt.hijacked.CloseAll(func(c io.Closer) { _ = c.Close() })
	drained := make(chan struct{})
	go func() { rt.draining.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	rt.registry.Close()
	return err
}

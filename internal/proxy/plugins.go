package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/plugin"
)

// Plugin integration. A snapshot's plugin instances (one chain per route, plus the
// consumers and their own chains) form a generation. Every compiled listener state
// holds a reference to its generation, and so does every request that runs plugins;
// the generation is closed (plugin.Chain.Close, plugin.Consumers.Close) when the
// last reference goes: after the swap that replaced it, once its in-flight requests
// have finished (and, for a listener removed by the swap, once it has drained).
// Routes without plugins never touch the generation.

// pluginGen is the plugin instances built from one snapshot.
type pluginGen struct {
	refs      atomic.Int64
	chains    []*plugin.Chain
	consumers *plugin.Consumers
	once      sync.Once
}

// release drops one reference; the last one closes every instance.
func (g *pluginGen) release() {
	if g != nil && g.refs.Add(-1) == 0 {
		g.close()
	}
}

func (g *pluginGen) close() {
	g.once.Do(func() {
		for _, ch := range g.chains {
			ch.Close()
		}
		g.consumers.Close()
	})
}

// pluginBuilder builds the chains of one snapshot while its listeners compile.
type pluginBuilder struct {
	env   *plugin.Env
	gen   *pluginGen
	cache map[string]*plugin.Chain // by gateway, route and specs: one chain per route
}

// buildPlugins builds the snapshot's consumers and prepares a builder for its
// route chains. env.Shared is the runtime's, so state kept there survives reloads.
func (rt *Runtime) buildPlugins(s *ir.Snapshot) (*pluginBuilder, error) {
	env := &plugin.Env{Logger: rt.log, Shared: rt.shared}
	b := &pluginBuilder{env: env, gen: &pluginGen{}, cache: map[string]*plugin.Chain{}}
	list := make([]*plugin.Consumer, 0, len(s.Consumers))
	for i := range s.Consumers {
		ic := &s.Consumers[i]
		creds := make([]plugin.Credential, len(ic.Credentials))
		for j, c := range ic.Credentials {
			creds[j] = plugin.Credential{Type: c.Type, Fields: c.Fields}
		}
		c, err := plugin.NewConsumer(ic.Name, ic.Groups, creds, specsOf(ic.Plugins), env)
		if err != nil {
			plugin.NewConsumers(list).Close()
			return nil, fmt.Errorf("proxy: %w", err)
		}
		list = append(list, c)
	}
	b.gen.consumers = plugin.NewConsumers(list)
	env.Consumers = b.gen.consumers
	return b, nil
}

func specsOf(ps []ir.PluginSpec) []plugin.Spec {
	if len(ps) == 0 {
		return nil
	}
	out := make([]plugin.Spec, len(ps))
	for i, p := range ps {
		out[i] = plugin.Spec{Name: p.Name, Config: p.Config}
	}
	return out
}

// chain returns the route's chain, nil when it has no plugins. The matches of one
// route (and its copies on several listeners) share one chain, so per-route state
// such as a local rate limit is counted once.
func (b *pluginBuilder) chain(r *ir.Route) (*plugin.Chain, error) {
	if b == nil || len(r.Plugins) == 0 {
		return nil, nil
	}
	var key strings.Builder
	key.WriteString(r.Gateway)
	key.WriteByte(0)
	key.WriteString(r.Name)
	for _, p := range r.Plugins {
		key.WriteByte(0)
		key.WriteString(p.Name)
		key.WriteByte(0)
		key.Write(p.Config)
	}
	if ch, ok := b.cache[key.String()]; ok {
		return ch, nil
	}
	ch, err := plugin.Build(specsOf(r.Plugins), b.env)
	if err != nil {
		return nil, err
	}
	if ch.Empty() {
		ch = nil
	} else {
		b.gen.chains = append(b.gen.chains, ch)
	}
	b.cache[key.String()] = ch
	return ch, nil
}

// hold takes a reference on st's plugin generation for one request. It fails when
// a swap replaced st meanwhile (the generation may already be closed); the caller
// then routes again on the new state.
func (hl *httpListener) hold(st *listenerState) bool {
	st.gen.refs.Add(1)
	if hl.state.Load() == st {
		return true
	}
	st.gen.release()
	return false
}

// plugState is one request's plugin run: the plugin.Context, and the
// ResponseWriter that runs the response phases. Pooled; never outlives ServeHTTP.
type plugState struct {
	ctx   plugin.Context
	chain *plugin.Chain // the route's (plugin.Chain.For applies consumer plugins)
	gen   *pluginGen
	x     *exchange
	w     http.ResponseWriter // the client's
	log   *slog.Logger
	head  bool              // WriteHeader has run
	drop  bool              // a response-phase reply replaced the response
	body  plugin.BodyWriter // wrapped body writers, nil without body plugins
	out   clientOut
	n     int64 // bytes written to the client
}

var plugStatePool = sync.Pool{New: func() any { p := new(plugState); p.out.p = p; return p }}

// errReplaced stops the copy of a response that a response-phase plugin replaced.
var errReplaced = errors.New("proxy: response replaced by a plugin")

// startPlugins runs the Rewrite and Access phases of cr's chain. It returns the
// writer the rest of the request must use, and false when the request is answered.
func (hl *httpListener) startPlugins(x *exchange, w http.ResponseWriter, r *http.Request, cr *compiledRoute) (http.ResponseWriter, bool) {
	p := plugStatePool.Get().(*plugState)
	p.chain, p.gen, p.x, p.w, p.log = cr.plugins, x.st.gen, x, w, hl.rt.log
	c := &p.ctx
	c.Request, c.ClientIP, c.Gateway, c.Route = r, clientIP(r.RemoteAddr), cr.gateway, cr.name
	x.plug = p
	if err := p.chain.Run(plugin.PhaseRewrite, c); err != nil {
		p.answer(err)
		return p, false
	}
	if err := p.chain.Run(plugin.PhaseAccess, c); err != nil {
		p.answer(err)
		return p, false
	}
	return p, true
}

// upstreamRequest runs the UpstreamRequest phase on the prepared request.
func (p *plugState) upstreamRequest(r *http.Request) bool {
	p.ctx.Request = r
	if err := p.chain.Run(plugin.PhaseUpstreamRequest, &p.ctx); err != nil {
		p.answer(err)
		return false
	}
	return true
}

// answer writes a handler's error as the response: a *plugin.Reply as it is (the
// response phases run for it), anything else as a 500 that names nothing internal.
func (p *plugState) answer(err error) {
	var reply *plugin.Reply
	if !errors.As(err, &reply) {
		p.failed(err)
		p.x.fail(p, errInternal)
		return
	}
	writeReply(p, reply)
	p.x.wrote = true
}

func (p *plugState) failed(err error) {
	p.log.Error("plugin failed", "gateway", p.ctx.Gateway, "route", p.ctx.Route,
		"request_id", p.x.reqID, "error", err)
}

// writeReply sends a local reply. Replies are shared by requests (plugins build
// them once), so they are only read.
func writeReply(w http.ResponseWriter, reply *plugin.Reply) {
	h := w.Header()
	for k, vv := range reply.Header {
		h[k] = vv
	}
	h[hdrLength] = []string{strconv.Itoa(len(reply.Body))}
	w.WriteHeader(reply.Status)
	if len(reply.Body) > 0 {
		_, _ = w.Write(reply.Body)
	}
}

// Header returns the client response's header map.
func (p *plugState) Header() http.Header { return p.w.Header() }

// WriteHeader runs the ResponseHeaders phase with the status and headers about to be
// sent, sets up the body writers of the ResponseBody phase (dropping Content-Length,
// which they may invalidate), then sends the head.
func (p *plugState) WriteHeader(code int) {
	if p.head {
		return
	}
	p.head = true
	c := &p.ctx
	c.Status, c.Header = code, p.w.Header()
	ch := p.chain.For(c)
	if ch.Has(plugin.PhaseResponseHeaders) {
		if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
			p.replace(err)
			return
		}
	}
	if ch.Has(plugin.PhaseResponseBody) && bodyAllowed(c.Request.Method, c.Status) {
		delete(c.Header, hdrLength)
		p.body = p.chain.WrapBody(c, &p.out)
	}
	p.x.status = c.Status
	p.w.WriteHeader(c.Status)
}

// replace answers with a ResponseHeaders handler's reply (or a 500) instead of the
// response being sent, whose body is then dropped.
func (p *plugState) replace(err error) {
	h := p.w.Header()
	rid := h[hdrRequestID]
	clear(h)
	if rid != nil {
		h[hdrRequestID] = rid
	}
	var reply *plugin.Reply
	if !errors.As(err, &reply) {
		p.failed(err)
		reply = &plugin.Reply{Status: errInternal.status, Body: errInternal.body,
			Header: http.Header{hdrContentType: valJSON, hdrPortErr: errInternal.hCode}}
	}
	p.drop = true
	p.x.status = reply.Status
	writeReply(p.w, reply)
	p.n += int64(len(reply.Body))
}

func bodyAllowed(method string, status int) bool {
	return method != http.MethodHead && status >= 200 && status != http.StatusNoContent &&
		status != http.StatusNotModified
}

// Write sends body bytes through the ResponseBody plugins, if any.
func (p *plugState) Write(b []byte) (int, error) {
	if !p.head {
		p.WriteHeader(http.StatusOK)
	}
	if p.drop {
		return 0, errReplaced
	}
	if p.body != nil {
		return p.body.Write(b)
	}
	n, err := p.w.Write(b)
	p.n += int64(n)
	return n, err
}

// Flush pushes buffered bytes (the body plugins' first) to the client.
func (p *plugState) Flush() {
	if p.body != nil {
		_ = p.body.Flush()
		return
	}
	_ = p.out.Flush()
}

// Unwrap lets http.ResponseController reach the client's writer (hijacking for
// upgrades, deadlines for idle timeouts).
func (p *plugState) Unwrap() http.ResponseWriter { return p.w }

// finish ends the plugin run: closes the body writers (unless the response was
// aborted), runs the Log phase, and recycles the state. It returns the consumer's
// name for the access log.
func (p *plugState) finish(x *exchange, aborted bool) string {
	if p.body != nil && !aborted {
		_ = p.body.Close()
	}
	x.bytesOut = p.n
	c := &p.ctx
	c.Status = x.status
	if c.Header == nil {
		c.Header = p.w.Header()
	}
	p.chain.Log(c)
	name := ""
	if c.Consumer != nil {
		name = c.Consumer.Name
	}
	p.gen.release()
	c.Reset()
	out := p.out
	*p = plugState{ctx: p.ctx, out: out}
	plugStatePool.Put(p)
	return name
}

// clientOut is the innermost BodyWriter: the client connection.
type clientOut struct{ p *plugState }

func (o *clientOut) Write(b []byte) (int, error) {
	n, err := o.p.w.Write(b)
	o.p.n += int64(n)
	return n, err
}

func (o *clientOut) Flush() error {
	if f, ok := o.p.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (o *clientOut) Close() error { return nil }

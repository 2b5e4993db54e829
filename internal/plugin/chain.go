package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Spec is one configured plugin: its name and raw JSON config.
type Spec struct {
	Name   string
	Config json.RawMessage
}

type entry struct {
	name string
	rank int
	inst any
}

// Chain is the built plugins of a route (or a consumer), grouped by phase in run order.
// It is immutable once built and shared by every request on its snapshot.
type Chain struct {
	entries []entry
	phases  [numPhases][]entry
	merged  sync.Map // *Consumer → *Chain
}

// Build decodes, validates and instantiates specs. Errors name the plugin. Two specs
// with the same name are an error (translation has already merged attachment levels).
func Build(specs []Spec, env *Env) (*Chain, error) {
	ch := &Chain{}
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Name] {
			return nil, fmt.Errorf("plugin %q configured twice", s.Name)
		}
		seen[s.Name] = true
		cfg, err := DecodeConfig(s.Name, s.Config)
		if err != nil {
			ch.Close()
			return nil, fmt.Errorf("plugin %q: %w", s.Name, err)
		}
		d, _ := Lookup(s.Name)
		inst, err := d.New(cfg, env)
		if err != nil {
			ch.Close()
			return nil, fmt.Errorf("plugin %q: %w", s.Name, err)
		}
		if phasesOf(inst) == 0 {
			ch.Close()
			return nil, fmt.Errorf("plugin %q: %w", s.Name, ErrNoPhase)
		}
		ch.entries = append(ch.entries, entry{name: s.Name, rank: Rank(s.Name), inst: inst})
	}
	ch.index()
	return ch, nil
}

func (ch *Chain) index() {
	sort.SliceStable(ch.entries, func(i, j int) bool { return Less(ch.entries[i].name, ch.entries[j].name) })
	for _, e := range ch.entries {
		mask := phasesOf(e.inst)
		for p := Phase(0); p < numPhases; p++ {
			if mask&(1<<p) != 0 {
				ch.phases[p] = append(ch.phases[p], e)
			}
		}
	}
}

func phasesOf(inst any) uint {
	var m uint
	if _, ok := inst.(RewriteHandler); ok {
		m |= 1 << PhaseRewrite
	}
	if _, ok := inst.(AccessHandler); ok {
		m |= 1 << PhaseAccess
	}
	if _, ok := inst.(UpstreamRequestHandler); ok {
		m |= 1 << PhaseUpstreamRequest
	}
	if _, ok := inst.(ResponseHeadersHandler); ok {
		m |= 1 << PhaseResponseHeaders
	}
	if _, ok := inst.(ResponseBodyHandler); ok {
		m |= 1 << PhaseResponseBody
	}
	if _, ok := inst.(LogHandler); ok {
		m |= 1 << PhaseLog
	}
	return m
}

// Empty reports whether the chain has no plugins (the data plane then skips it).
func (ch *Chain) Empty() bool { return ch == nil || len(ch.entries) == 0 }

// Has reports whether any plugin runs in phase p.
func (ch *Chain) Has(p Phase) bool { return ch != nil && len(ch.phases[p]) > 0 }

// Names lists the chain's plugins in run order.
func (ch *Chain) Names() []string {
	if ch == nil {
		return nil
	}
	out := make([]string, len(ch.entries))
	for i, e := range ch.entries {
		out[i] = e.name
	}
	return out
}

// For returns the chain that applies to c: this one, or, once an authentication plugin
// has identified a consumer with plugins of its own, this one with the consumer's plugins
// replacing same-named ones.
func (ch *Chain) For(c *Context) *Chain {
	if c.Consumer == nil || c.Consumer.chain.Empty() {
		return ch
	}
	if m, ok := ch.merged.Load(c.Consumer); ok {
		return m.(*Chain)
	}
	m := &Chain{}
	own := map[string]bool{}
	for _, e := range c.Consumer.chain.entries {
		own[e.name] = true
		m.entries = append(m.entries, e)
	}
	for _, e := range ch.entries {
		if !own[e.name] {
			m.entries = append(m.entries, e)
		}
	}
	m.index()
	actual, _ := ch.merged.LoadOrStore(c.Consumer, m)
	return actual.(*Chain)
}

// Run runs the handlers of phase p (not PhaseResponseBody or PhaseLog) until one returns
// an error. In PhaseAccess, when a handler identifies a consumer that has plugins, the
// remaining access handlers come from the merged chain (see For).
func (ch *Chain) Run(p Phase, c *Context) error {
	if ch == nil {
		return nil
	}
	cur := ch.For(c)
	consumer := c.Consumer
	for i := 0; i < len(cur.phases[p]); i++ {
		e := cur.phases[p][i]
		if err := call(p, e.inst, c); err != nil {
			var reply *Reply
			if errors.As(err, &reply) {
				return reply
			}
			return fmt.Errorf("plugin %q (%s): %w", e.name, p, err)
		}
		if p == PhaseAccess && c.Consumer != consumer {
			consumer = c.Consumer
			next := ch.For(c)
			if next != cur {
				// Continue after the plugin that just ran, in the merged order.
				cur, i = next, indexAfter(next.phases[p], e)
			}
		}
	}
	return nil
}

func indexAfter(list []entry, done entry) int {
	for j, e := range list {
		if e.name == done.name {
			return j
		}
	}
	// The identifying plugin was replaced by the consumer's own: resume at its rank.
	for j, e := range list {
		if !Less(e.name, done.name) {
			return j - 1
		}
	}
	return len(list) - 1
}

func call(p Phase, inst any, c *Context) error {
	switch p {
	case PhaseRewrite:
		return inst.(RewriteHandler).Rewrite(c)
	case PhaseAccess:
		return inst.(AccessHandler).Access(c)
	case PhaseUpstreamRequest:
		return inst.(UpstreamRequestHandler).UpstreamRequest(c)
	case PhaseResponseHeaders:
		return inst.(ResponseHeadersHandler).ResponseHeaders(c)
	}
	return fmt.Errorf("phase %s is not run with Run", p)
}

// WrapBody lets PhaseResponseBody plugins wrap w, the first in order outermost.
func (ch *Chain) WrapBody(c *Context, w BodyWriter) BodyWriter {
	cur := ch.For(c)
	for i := len(cur.phases[PhaseResponseBody]) - 1; i >= 0; i-- {
		w = cur.phases[PhaseResponseBody][i].inst.(ResponseBodyHandler).WrapBody(c, w)
	}
	return w
}

// Log runs PhaseLog handlers. The data plane calls it exactly once for every request
// whose chain started running, whatever happened after (a local reply, an upstream
// error, a client that left), so plugins may release per-request resources here.
func (ch *Chain) Log(c *Context) {
	if ch == nil {
		return
	}
	for _, e := range ch.For(c).phases[PhaseLog] {
		e.inst.(LogHandler).Log(c)
	}
}

// Close releases every instance that holds resources.
func (ch *Chain) Close() {
	if ch == nil {
		return
	}
	for _, e := range ch.entries {
		if cl, ok := e.inst.(Closer); ok {
			_ = cl.Close()
		}
	}
}

// NewConsumer builds a consumer with its own plugins (nil specs: none).
func NewConsumer(name string, groups []string, creds []Credential, specs []Spec, env *Env) (*Consumer, error) {
	c := &Consumer{Name: name, Groups: groups, Credentials: creds}
	if len(specs) > 0 {
		ch, err := Build(specs, env)
		if err != nil {
			return nil, fmt.Errorf("consumer %q: %w", name, err)
		}
		c.chain = ch
	}
	return c, nil
}

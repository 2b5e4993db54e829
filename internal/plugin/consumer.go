package plugin

import "sync"

// Consumer is an API client known to the gateway.
type Consumer struct {
	Name   string
	Groups []string
	// Credentials are the consumer's credentials; secrets are already hashed
	// (see ir.Credential).
	Credentials []Credential
	// chain holds the plugins attached to this consumer; they override same-named route
	// plugins once the consumer is identified.
	chain *Chain
}

// Credential is one way a consumer proves who it is, by type ("key-auth", "basic-auth", …).
type Credential struct {
	Type   string
	Fields map[string]string
}

// InGroup reports whether the consumer belongs to group.
func (c *Consumer) InGroup(group string) bool {
	for _, g := range c.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// Consumers is a snapshot's consumer set.
type Consumers struct {
	byName map[string]*Consumer
	list   []*Consumer
}

// NewConsumers indexes consumers by name.
func NewConsumers(list []*Consumer) *Consumers {
	cs := &Consumers{byName: make(map[string]*Consumer, len(list)), list: list}
	for _, c := range list {
		cs.byName[c.Name] = c
	}
	return cs
}

// Get returns a consumer by name.
func (cs *Consumers) Get(name string) (*Consumer, bool) {
	if cs == nil {
		return nil, false
	}
	c, ok := cs.byName[name]
	return c, ok
}

// All returns every consumer (read-only).
func (cs *Consumers) All() []*Consumer {
	if cs == nil {
		return nil
	}
	return cs.list
}

// Shared holds process-wide resources that outlive snapshots (Redis clients, counters
// that must survive a reload). Values are created once per key.
type Shared struct {
	mu sync.Mutex
	m  map[string]any
}

// GetOrCreate returns the value for key, creating it with create the first time.
func (s *Shared) GetOrCreate(key string, create func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]any{}
	}
	if v, ok := s.m[key]; ok {
		return v
	}
	v := create()
	s.m[key] = v
	return v
}

// Close releases the plugins attached to every consumer (see Chain.Close). The data
// plane calls it when the snapshot that built the consumers is retired.
func (cs *Consumers) Close() {
	if cs == nil {
		return
	}
	for _, c := range cs.list {
		c.chain.Close()
	}
}

package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"portico.dev/portico/internal/plugins/internal/pluginutil"
)

// Local is an in-process token bucket per key, written as GCRA: each key holds one
// atomic "theoretical arrival time" (TAT); a request is allowed when moving the TAT
// one interval later keeps it within the bucket depth of now. A key whose TAT is in the
// past has a full bucket, which is the same as not being stored at all — so such keys
// can be evicted at any time without changing behaviour.
//
// Keys live in a striped map (shards with their own lock). The number of keys is
// capped: when a shard is full, keys with full buckets are swept out; if none are,
// arbitrary keys are evicted (those clients start again with a full bucket).
type Local struct {
	interval int64 // ns per request
	depth    int64 // interval × burst
	burst    int64
	perShard int
	seed     maphash.Seed
	shards   [numShards]shard
	clock    func() int64
}

const numShards = 64

// DefaultMaxKeys is the number of keys a Local keeps at most.
const DefaultMaxKeys = 1 << 16

type shard struct {
	mu sync.RWMutex
	m  map[pluginutil.Key]*atomic.Int64
	_  [40]byte // keep shards on separate cache lines
}

var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) + int64(time.Hour) }

// clock is the time source of new limiters (tests replace it).
var clock = monotonic

// NewLocal returns a local limiter for p holding at most maxKeys keys (0: DefaultMaxKeys).
func NewLocal(p Policy, maxKeys int) *Local {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	iv := max(int64(p.Window)/p.Requests, 1)
	l := &Local{interval: iv, depth: iv * p.Burst, burst: p.Burst, seed: maphash.MakeSeed(),
		perShard: max(maxKeys/numShards, 1), clock: clock}
	for i := range l.shards {
		l.shards[i].m = make(map[pluginutil.Key]*atomic.Int64)
	}
	return l
}

func (l *Local) shardOf(k pluginutil.Key) *shard {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(k.Route)
	h.WriteByte(byte(k.Kind))
	h.WriteString(k.ID)
	return &l.shards[h.Sum64()%numShards]
}

// Take implements Limiter.
func (l *Local) Take(k pluginutil.Key) Decision {
	s := l.shardOf(k)
	s.mu.RLock()
	tat := s.m[k]
	s.mu.RUnlock()
	if tat == nil {
		tat = l.insert(s, k)
	}
	for {
		now := l.clock()
		old := tat.Load()
		next := max(old, now) + l.interval
		if next-now > l.depth {
			return Decision{Remaining: 0, Reset: time.Duration(old - now), RetryAfter: time.Duration(next - now - l.depth)}
		}
		if tat.CompareAndSwap(old, next) {
			return l.decision(next, now)
		}
	}
}

// Peek implements Limiter.
func (l *Local) Peek(k pluginutil.Key) Decision {
	s := l.shardOf(k)
	s.mu.RLock()
	tat := s.m[k]
	s.mu.RUnlock()
	now := l.clock()
	if tat == nil {
		return Decision{Allowed: true, Remaining: l.burst}
	}
	return l.decision(max(tat.Load(), now), now)
}

func (l *Local) decision(tat, now int64) Decision {
	used := tat - now // time the bucket needs to refill completely
	return Decision{Allowed: true, Remaining: (l.depth - used) / l.interval, Reset: time.Duration(used)}
}

// insert adds k (or returns the entry another request just added), making room first.
func (l *Local) insert(s *shard, k pluginutil.Key) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.m[k]; v != nil {
		return v
	}
	if len(s.m) >= l.perShard {
		l.evict(s)
	}
	v := new(atomic.Int64)
	s.m[k.Clone()] = v
	return v
}

// evict removes keys with full buckets; if that frees nothing, it drops an eighth of
// the shard (map order is arbitrary). Called with s.mu held.
func (l *Local) evict(s *shard) {
	now := l.clock()
	for k, v := range s.m {
		if v.Load() <= now {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < l.perShard-l.perShard/8 {
			break
		}
		delete(s.m, k)
	}
}

// Len reports how many keys are stored.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

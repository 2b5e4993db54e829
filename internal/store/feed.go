package store

import (
	"context"
	"sync"
	"time"
)

// subBuffer is how many changes a subscriber may lag before its channel is closed.
const subBuffer = 4096

// feed turns committed revisions into Change values for subscribers. It never trusts a
// notification's content: each wake-up reads the revisions table after the last revision
// delivered, so delivery is in order and gap-free, even across lost notifications.
type feed struct {
	s *sqlStore
	// listen, when set, keeps a notification connection open and calls poke on every
	// notification; ready is closed once it listens (PostgreSQL). It runs until ctx ends.
	listen func(ctx context.Context, poke func(), ready chan<- error)
	// poll is how often the feed re-reads without a wake-up (a safety net).
	poll time.Duration

	mu      sync.Mutex
	started bool
	last    int64
	subs    map[*subscriber]struct{}
	wake    chan struct{}
	cancel  context.CancelFunc
	done    sync.WaitGroup
	stopped chan struct{}
	stop    sync.Once
}

type subscriber struct {
	ch    chan Change
	after int64
}

func newFeed(s *sqlStore, poll time.Duration) *feed {
	return &feed{s: s, poll: poll, subs: map[*subscriber]struct{}{}, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// poke asks the feed to read new revisions.
func (f *feed) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Changes subscribes to the feed, starting it on first use.
func (s *sqlStore) Changes(ctx context.Context) (<-chan Change, error) {
	f := s.feed
	if err := f.start(); err != nil {
		return nil, err
	}
	head, err := s.Revision(ctx)
	if err != nil {
		return nil, err
	}
	// Everything after both head and what the feed already broadcast reaches this
	// subscriber, so "Changes, then Resources" misses nothing.
	f.mu.Lock()
	sub := &subscriber{ch: make(chan Change, subBuffer), after: max(head, f.last)}
	f.subs[sub] = struct{}{}
	f.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-f.stopped:
		}
		f.drop(sub)
	}()
	return sub.ch, nil
}

func (f *feed) start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	if f.listen != nil {
		ready := make(chan error, 1)
		f.done.Add(1)
		go func() {
			defer f.done.Done()
			f.listen(ctx, f.poke, ready)
		}()
		if err := <-ready; err != nil {
			cancel()
			return err
		}
	}
	head, err := f.s.Revision(ctx)
	if err != nil {
		cancel()
		return err
	}
	f.last, f.cancel, f.started = head, cancel, true
	f.done.Add(1)
	go f.run(ctx)
	return nil
}

// run reads new revisions on every wake-up and poll tick until ctx ends.
func (f *feed) run(ctx context.Context) {
	defer f.done.Done()
	tick := time.NewTicker(f.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-tick.C:
		}
		for f.catchUp(ctx) {
		}
	}
}

// catchUp delivers one batch of revisions after f.last; it reports whether more may follow.
func (f *feed) catchUp(ctx context.Context) bool {
	const batch = 1000
	rows, err := f.s.r.QueryContext(ctx, f.s.q("SELECT revision, kind, namespace, name, operation FROM revisions WHERE revision > ? ORDER BY revision LIMIT ?"), f.last, batch)
	if err != nil {
		return false // retried on the next wake-up or tick
	}
	defer rows.Close()
	var changes []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.Revision, &c.Key.Kind, &c.Key.Namespace, &c.Key.Name, &c.Operation); err != nil {
			return false
		}
		changes = append(changes, c)
	}
	if rows.Err() != nil || len(changes) == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range changes {
		for sub := range f.subs {
			if c.Revision <= sub.after {
				continue
			}
			select {
			case sub.ch <- c:
			default: // too slow: close so the subscriber resynchronizes
				delete(f.subs, sub)
				close(sub.ch)
			}
		}
	}
	f.last = changes[len(changes)-1].Revision
	return len(changes) == batch
}

func (f *feed) drop(sub *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[sub]; ok {
		delete(f.subs, sub)
		close(sub.ch)
	}
}

// close stops the feed and closes every subscriber's channel.
func (f *feed) close() {
	f.mu.Lock()
	cancel := f.cancel
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	f.stop.Do(func() { close(f.stopped) })
	f.done.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.subs {
		delete(f.subs, sub)
		close(sub.ch)
	}
}

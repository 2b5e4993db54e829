package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pollInterval is the pause after an answer that is not yet the backend's 200 (-poll).
// Shorter is finer, but the polls' own CPU competes with the processes measured.
var pollInterval = time.Millisecond

// sample is one measured write.
type sample struct {
	start time.Time     // just before the write
	total time.Duration // before the write → the last proxy answers 200
	first time.Duration // before the write → the first proxy answers 200
	put   time.Duration // the write itself (admin PUT; nginx: config write + SIGHUP)
}

// memSample is memory in KiB.
type memSample struct {
	cpRSS, cpHeap, dpRSS, dpHeap, dpHeapGC int64
}

// pollsSent counts the GETs of every poller (the proxies' CPU includes serving them).
var pollsSent atomic.Int64

// poller sends GETs to one proxy.
type poller struct {
	base string
	c    *http.Client
}

// newPoller: keepAlive reuses one connection (Portico swaps routing tables under open
// connections); without it each GET is a new connection (an nginx reload starts new
// workers; idle connections to the old ones are closed).
func newPoller(base string, keepAlive bool) *poller {
	tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 2, DisableCompression: true}
	return &poller{base: base, c: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// ok reports whether GET path with this Host is the backend's 200 (the echo server sets
// X-Echo-Server; a proxy's own 404 or 502 does not).
func (p *poller) ok(path, host string) bool {
	req, err := http.NewRequest(http.MethodGet, p.base+path, nil)
	if err != nil {
		return false
	}
	req.Host = host
	pollsSent.Add(1)
	resp, err := p.c.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get("X-Echo-Server") != ""
}

// pollAll polls every proxy concurrently until each serves path, and returns the times
// from start to the first and to the last one doing so. alive is checked while waiting.
func pollAll(ctx context.Context, ps []*poller, start time.Time, path, host string, timeout time.Duration, alive func() error) (first, last time.Duration, err error) {
	times := make([]time.Duration, len(ps))
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				if p.ok(path, host) {
					times[i] = time.Since(start)
					return
				}
				if ctx.Err() != nil {
					errs[i] = ctx.Err()
					return
				}
				if time.Since(start) > timeout {
					errs[i] = fmt.Errorf("%s%s not served after %s", p.base, path, timeout)
					return
				}
				if n%200 == 199 {
					if err := alive(); err != nil {
						errs[i] = err
						return
					}
				}
				time.Sleep(pollInterval)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	return slices.Min(times), slices.Max(times), nil
}

// waitFor calls ok every 100 ms until it is true, p exits, or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, p *proc, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return nil
		}
		if err := p.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready after %s (log %s):\n%s", p.name, timeout, p.log, tail(p.log, 10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stats are nearest-rank percentiles of durations, in ms.
type stats struct {
	n                   int
	p50, p90, p99, maxv float64
}

func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[max(i, 0)])
	}
	return stats{n: len(s), p50: rank(0.50), p90: rank(0.90), p99: rank(0.99), maxv: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// writer is one system under test in a write loop.
type writer struct {
	who    string
	roles  []string // the process roles whose CPU is charged to its writes
	count  int      // measured writes
	write  func(k int) (sample, error)
	record func(sample)

	samples []sample // measured
	polls   int64    // GETs its pollers sent during measured writes
}

// loopCPU is the CPU use during one write loop: by role, and the machine's share used
// by everything else (other tenants: a noise gauge).
type loopCPU struct {
	n       int
	writers []*writer
	cpu     cpu
}

// writeLoop makes each writer's warm-up writes, then interleaves their measured writes
// evenly (P P P P N P P P P N … for 100 and 20), each followed by the gap, so that a burst
// of load from other tenants lands on every system under test alike.
func (b *bench) writeLoop(ctx context.Context, n int, ws ...*writer) error {
	one := func(w *writer, warm bool) error {
		b.probe++
		p0 := pollsSent.Load()
		s, err := w.write(b.probe)
		if err != nil {
			return fmt.Errorf("%s, %d routes, write %d: %w", w.who, n, len(w.samples), err)
		}
		if !warm {
			w.polls += pollsSent.Load() - p0
			w.samples = append(w.samples, s)
			w.record(s)
		}
		b.logWrite(w.who, n, b.probe, warm, s)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.gap):
			return nil
		}
	}
	for range b.warmup {
		for _, w := range ws {
			if w.count > 0 {
				if err := one(w, true); err != nil {
					return err
				}
			}
		}
	}
	g := b.procs.gauge()
	for {
		var next *writer
		for _, w := range ws {
			if len(w.samples) >= w.count {
				continue
			}
			if next == nil || float64(len(w.samples))/float64(w.count) < float64(len(next.samples))/float64(next.count) {
				next = w
			}
		}
		if next == nil {
			break
		}
		if err := one(next, false); err != nil {
			return err
		}
	}
	lc := loopCPU{n: n, writers: ws, cpu: g.read(runtime.NumCPU())}
	b.res.noise = append(b.res.noise, lc)
	for _, w := range ws {
		var totals []time.Duration
		for _, s := range w.samples {
			totals = append(totals, s.total)
		}
		st := summarize(totals)
		logf("%s: %d routes, %d writes: p50 %.1f ms  p99 %.1f ms  max %.1f ms", w.who, n, st.n, st.p50, st.p99, st.maxv)
	}
	logf("CPU during those writes: %s; machine: ours %.0f%%, other tenants %.0f%% of %d CPUs",
		lc.perWrite(), lc.cpu.ours, lc.cpu.other, runtime.NumCPU())
	return nil
}

// perWrite renders CPU ms per write: each writer's roles divided by its writes, the
// shared roles (pollers, admin client, backend) by all writes.
func (lc loopCPU) perWrite() string {
	var parts []string
	total := 0
	for _, w := range lc.writers {
		total += len(w.samples)
		var ps []string
		for _, r := range w.roles {
			ps = append(ps, fmt.Sprintf("%s %.0f", r, 1000*lc.cpu.byRole[r]/float64(max(len(w.samples), 1))))
		}
		parts = append(parts, fmt.Sprintf("%s ms per %s write (%.0f polls)", strings.Join(ps, " + "), w.who,
			float64(w.polls)/float64(max(len(w.samples), 1))))
	}
	parts = append(parts, fmt.Sprintf("bench %.0f + echo %.0f ms per write of either",
		1000*lc.cpu.byRole["bench"]/float64(max(total, 1)), 1000*lc.cpu.byRole["echo"]/float64(max(total, 1))))
	return strings.Join(parts, "; ")
}

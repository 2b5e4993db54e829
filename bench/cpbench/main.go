// Command cpbench measures Portico's control plane against nginx, in one run: how long a
// route change takes to be served by every data plane (10 by default, each on its own
// loopback IP), the memory of the control plane and of a data plane at 10k and 100k
// routes, and the time of a bulk apply through SQLite and PostgreSQL. The peer is nginx
// with the same routes as location blocks, reloaded with SIGHUP.
//
// bench/controlplane.sh builds Portico and runs this; see bench/README.md for the method
// and how to read the output. Every process it starts is stopped on exit (by PID).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bench holds the settings and the shared state of one run.
type bench struct {
	bin, nginxBin, tmp string
	sizes, memSizes    []int
	writes, nginxW     int
	warmup             int
	dataplanes, hosts  int
	settle, gap        time.Duration
	timeout            time.Duration
	pgBase, pgDB       string
	pgWrites           int
	cpLogLevel         string
	profileDir         string
	profileSecs        int
	hold               time.Duration
	deadline           time.Duration
	label              string

	procs      procs
	ports      ports
	echoPort   int
	listenPort int
	dpPollers  []*poller
	probe      int // next probe route number, unique over the run

	res results
}

// results are everything the tables print.
type results struct {
	prop     map[int]*propResult // by route count
	applies  []applyResult
	mem      map[int]*memResult
	pgWrites []time.Duration
	noise    []loopCPU
	timeline []timeline
	profile  *profileResult
}

type propResult struct {
	portico, first, put []time.Duration
	nginx, nginxPut     []time.Duration
}

type applyResult struct {
	store   string
	from, n int
	posts   []time.Duration
	served  time.Duration // until every data plane served the last route
}

type memResult struct {
	portico            *memSample
	nginxRSS, nginxPSS int64
}

func main() {
	b := &bench{res: results{prop: map[int]*propResult{}, mem: map[int]*memResult{}}}
	var sizes, memSizes string
	flag.StringVar(&b.bin, "bin", "", "portico binary")
	flag.StringVar(&b.nginxBin, "nginx", "nginx", "nginx binary")
	flag.StringVar(&b.tmp, "tmp", "", "work folder (data dirs, configs, logs)")
	flag.StringVar(&sizes, "sizes", "1000,10000", "route counts for the propagation runs")
	flag.StringVar(&memSizes, "mem-sizes", "10000,100000", "route counts for the memory readings")
	flag.IntVar(&b.writes, "writes", 100, "measured writes per size (Portico)")
	flag.IntVar(&b.nginxW, "nginx-writes", 20, "measured writes per size (nginx)")
	flag.IntVar(&b.warmup, "warmup", 2, "unmeasured writes before the measured ones")
	flag.IntVar(&b.dataplanes, "dataplanes", 10, "data planes (127.0.1.1 … 127.0.1.N)")
	flag.IntVar(&b.hosts, "hosts", 100, "distinct hosts the routes spread over")
	flag.DurationVar(&b.settle, "settle", 5*time.Second, "pause before a memory reading")
	flag.DurationVar(&b.gap, "gap", 100*time.Millisecond, "pause between writes")
	flag.DurationVar(&pollInterval, "poll", time.Millisecond, "pause between a proxy's polls until it serves the change")
	flag.DurationVar(&b.timeout, "timeout", 30*time.Second, "longest wait for one write to be served")
	flag.StringVar(&b.pgBase, "pg", "", "PostgreSQL base URL (postgres://user@host:port) for the apply through PostgreSQL; empty to skip")
	flag.StringVar(&b.pgDB, "pg-db", "bench_cp", "database created for the run and dropped after")
	flag.IntVar(&b.pgWrites, "pg-writes", 20, "propagation writes through PostgreSQL at the largest size")
	flag.StringVar(&b.cpLogLevel, "cp-log-level", "debug", "control plane --log-level (debug logs every push: the wall-clock breakdown needs it)")
	flag.StringVar(&b.profileDir, "profile", "", "folder: after the largest size, profile data plane 1 (pprof) and the control plane (perf) during more writes")
	flag.IntVar(&b.profileSecs, "profile-seconds", 20, "length of the profile")
	flag.StringVar(&b.label, "label", "", "what was built (git describe), printed with the tables")
	flag.DurationVar(&b.deadline, "deadline", 15*time.Minute, "hard limit for the whole run")
	flag.DurationVar(&b.hold, "hold", 0, "after the largest size's writes, keep its processes up this long (to inspect them by hand)")
	flag.Parse()
	var err error
	if b.sizes, err = ints(sizes); err == nil {
		b.memSizes, err = ints(memSizes)
	}
	if err != nil || b.bin == "" || b.tmp == "" || b.dataplanes < 1 || b.dataplanes > 250 {
		fmt.Fprintln(os.Stderr, "usage: cpbench -bin PORTICO -tmp DIR [flags] (sizes: comma-separated counts; 1 ≤ dataplanes ≤ 250)", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeoutCause(ctx, b.deadline, fmt.Errorf("the run took longer than -deadline %s", b.deadline))
	err = b.run(ctx)
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
	}
	cancel()
	stop()
	b.procs.stopAll()
	if b.pgBase != "" {
		b.dropDB()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	b.print(os.Stdout)
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", a...)
}

func (b *bench) run(ctx context.Context) error {
	ips := []string{"127.0.0.1"}
	for i := 1; i <= b.dataplanes; i++ {
		ips = append(ips, fmt.Sprintf("127.0.1.%d", i))
	}
	for _, ip := range ips {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			return fmt.Errorf("cannot bind %s (the data planes each take one loopback address; Linux routes 127.0.0.0/8 to lo): %w", ip, err)
		}
		l.Close()
	}
	var err error
	if b.listenPort, err = b.ports.next(ips...); err != nil {
		return err
	}
	if b.echoPort, err = b.ports.next("127.0.0.1"); err != nil {
		return err
	}
	echo, err := b.procs.start("echo", b.tmp+"/echo.log", nil, b.bin, "echo", "--listen", fmt.Sprintf("127.0.0.1:%d", b.echoPort))
	if err != nil {
		return err
	}
	ep := newPoller(fmt.Sprintf("http://127.0.0.1:%d", b.echoPort), false)
	if err := waitFor(ctx, 10*time.Second, echo, func() bool { return ep.ok("/", "x") }); err != nil {
		return err
	}
	logf("echo backend 127.0.0.1:%d; gateway listener port %d on 127.0.1.1-%d; work dir %s", b.echoPort, b.listenPort, b.dataplanes, b.tmp)

	largest := b.sizes[len(b.sizes)-1]
	for _, n := range b.sizes {
		if err := b.porticoSize(ctx, n, n == largest); err != nil {
			return err
		}
	}
	for _, m := range b.memSizes {
		if !slices.Contains(b.sizes, m) && m < largest {
			logf("WARNING: memory size %d is neither a propagation size nor above the largest (%d): skipped", m, largest)
			continue
		}
		x, err := b.startNginx(ctx, fmt.Sprintf("nginx-mem-%d", m), m)
		if err != nil {
			return err
		}
		rss, pss, err := x.memory(ctx)
		x.stop()
		if err != nil {
			return err
		}
		b.mem(m).nginxRSS, b.mem(m).nginxPSS = rss, pss
		logf("nginx %d locations: rss %.1f MiB (pss %.1f MiB), master + workers", m, mib(rss), mib(pss))
	}
	if b.pgBase != "" {
		return b.postgres(ctx, largest)
	}
	return nil
}

func (b *bench) mem(n int) *memResult {
	if b.res.mem[n] == nil {
		b.res.mem[n] = &memResult{}
	}
	return b.res.mem[n]
}

func (b *bench) prop(n int) *propResult {
	if b.res.prop[n] == nil {
		b.res.prop[n] = &propResult{}
	}
	return b.res.prop[n]
}

// porticoSize: a fresh control plane and data planes, n routes in one apply, memory,
// the measured writes; after the largest size, more routes for the larger memory sizes.
func (b *bench) porticoSize(ctx context.Context, n int, largest bool) error {
	logf("portico: control plane + %d data planes, %d routes", b.dataplanes, n)
	p, err := b.startPortico(ctx, fmt.Sprintf("portico-%d", n), "")
	if err != nil {
		return err
	}
	defer p.stop()
	if dps := p.dataPlanes(); dps != b.dataplanes {
		return fmt.Errorf("control plane lists %d data planes, want %d", dps, b.dataplanes)
	}
	posts, served, err := p.bulk(ctx, 0, n)
	if err != nil {
		return err
	}
	b.res.applies = append(b.res.applies, applyResult{store: "sqlite", n: n, posts: posts, served: served})
	logf("portico: apply of %d routes %.0f ms (%d POST); all %d data planes served the last after %.0f ms", n, ms(sum(posts)), len(posts), b.dataplanes, ms(served))
	if slices.Contains(b.memSizes, n) {
		m, err := p.memory(ctx)
		if err != nil {
			return err
		}
		b.mem(n).portico = &m
		logMem(n, m)
	}
	r := b.prop(n)
	pw := &writer{who: "portico", roles: []string{"cp", "dp"}, count: b.writes,
		write: func(k int) (sample, error) { return p.write(ctx, k) },
		record: func(s sample) {
			r.portico, r.first, r.put = append(r.portico, s.total), append(r.first, s.first), append(r.put, s.put)
		}}
	ws := []*writer{pw}
	var x *nginx
	if b.nginxW > 0 {
		logf("nginx: %d locations (its writes are interleaved with Portico's)", n)
		if x, err = b.startNginx(ctx, fmt.Sprintf("nginx-%d", n), n); err != nil {
			return err
		}
		defer x.stop()
		ws = append(ws, &writer{who: "nginx", roles: []string{"nginx"}, count: b.nginxW,
			write: func(k int) (sample, error) { return x.write(ctx, n, k) },
			record: func(s sample) {
				r.nginx, r.nginxPut = append(r.nginx, s.total), append(r.nginxPut, s.put)
			}})
	}
	if err := b.writeLoop(ctx, n, ws...); err != nil {
		return err
	}
	if x != nil {
		x.stop() // idle from here on; the deferred stop is then a no-op
	}
	b.addTimeline(p, "portico", n, pw.samples)
	if !largest {
		return nil
	}
	if b.profileDir != "" {
		if err := b.profile(ctx, p, n); err != nil {
			return err
		}
	}
	if b.hold > 0 {
		logf("holding for %s: control plane admin %s (token %s/cp/admin.token), data plane ops %v", b.hold, p.adm.base, p.dir, p.dpOps)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.hold):
		}
	}
	count := n
	for _, m := range b.memSizes {
		if m <= count {
			continue
		}
		posts, served, err := p.bulk(ctx, count, m)
		if err != nil {
			return err
		}
		b.res.applies = append(b.res.applies, applyResult{store: "sqlite", from: count, n: m - count, posts: posts, served: served})
		logf("portico: apply of %d more routes (to %d) %.0f ms in %d POST(s); served by all after %.0f ms", m-count, m, ms(sum(posts)), len(posts), ms(served))
		count = m
		mm, err := p.memory(ctx)
		if err != nil {
			return err
		}
		b.mem(m).portico = &mm
		logMem(m, mm)
	}
	return nil
}

// postgres: the apply of n routes through PostgreSQL (a database of its own), then a
// few propagation writes through its change feed.
func (b *bench) postgres(ctx context.Context, n int) error {
	if err := b.psql("DROP DATABASE IF EXISTS " + b.pgDB); err != nil {
		return err
	}
	if err := b.psql("CREATE DATABASE " + b.pgDB); err != nil {
		return err
	}
	logf("portico (PostgreSQL database %s): control plane + %d data planes, %d routes", b.pgDB, b.dataplanes, n)
	p, err := b.startPortico(ctx, "portico-pg", b.pgBase+"/"+b.pgDB)
	if err != nil {
		return err
	}
	defer p.stop()
	posts, served, err := p.bulk(ctx, 0, n)
	if err != nil {
		return err
	}
	b.res.applies = append(b.res.applies, applyResult{store: "postgres", n: n, posts: posts, served: served})
	logf("portico (PostgreSQL): apply of %d routes %.0f ms; served by all after %.0f ms", n, ms(sum(posts)), ms(served))
	w := &writer{who: "portico-pg", roles: []string{"cp", "dp"}, count: b.pgWrites,
		write:  func(k int) (sample, error) { return p.write(ctx, k) },
		record: func(s sample) { b.res.pgWrites = append(b.res.pgWrites, s.total) }}
	if err := b.writeLoop(ctx, n, w); err != nil {
		return err
	}
	b.addTimeline(p, "portico-pg", n, w.samples)
	return nil
}

func (b *bench) psql(sql string) error {
	out, err := exec.Command("psql", b.pgBase+"/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql).CombinedOutput()
	if err != nil {
		return fmt.Errorf("psql %q: %v: %s", sql, err, out)
	}
	return nil
}

func (b *bench) dropDB() {
	if err := b.psql("DROP DATABASE IF EXISTS " + b.pgDB); err != nil {
		logf("WARNING: %v", err)
	}
}

func sum(ds []time.Duration) (t time.Duration) {
	for _, d := range ds {
		t += d
	}
	return t
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func logMem(n int, m memSample) {
	logf("portico memory at %d routes: control plane rss %.1f MiB heap %.1f MiB; data plane rss %.1f MiB heap %.1f MiB (live after GC %.1f)",
		n, mib(m.cpRSS), mib(m.cpHeap), mib(m.dpRSS), mib(m.dpHeap), mib(m.dpHeapGC))
}

// logWrite appends one write to <tmp>/writes.tsv, with wall-clock times (UTC, as in the
// proxies' logs) to line up with their log lines: who routes probe warmup start
// put_done_ms first_ms last_ms.
func (b *bench) logWrite(who string, n, k int, warmup bool, s sample) {
	f, err := os.OpenFile(b.tmp+"/writes.tsv", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\t%d\t%d\t%t\t%s\t%.1f\t%.1f\t%.1f\n", who, n, k, warmup,
		s.start.UTC().Format("2006-01-02T15:04:05.000000Z"), ms(s.put), ms(s.first), ms(s.total))
}

// addTimeline splits the writes' wall-clock time using the processes' logs (only when
// the control plane logs its pushes: -cp-log-level debug).
func (b *bench) addTimeline(p *portico, who string, n int, samples []sample) {
	if b.cpLogLevel != "debug" || len(samples) == 0 {
		return
	}
	tl := p.timeline(who, n, samples)
	b.res.timeline = append(b.res.timeline, tl)
	logf("%s: %d routes: wall-clock p50 (ms) put %.0f, cp %.0f, fanout %.0f, dp %.0f, seen %.0f (%d of %d writes matched in the logs)",
		who, n, tl.p50[0], tl.p50[1], tl.p50[2], tl.p50[3], tl.p50[4], tl.matched, len(samples))
}

package main

import (
	"fmt"
	"io"
	"runtime"
)

// goalP99 is the propagation goal at every size.
const goalP99 = 100.0

// print writes the tables.
func (b *bench) print(w io.Writer) {
	fmt.Fprintf(w, "\nPortico control plane vs nginx, one run; %d data planes on 127.0.1.1-%d; all processes share the machine's %d CPUs\n", b.dataplanes, b.dataplanes, cpus())
	fmt.Fprintf(w, "portico = %s %s\n", b.bin, b.label)

	fmt.Fprintf(w, "\n1. Propagation: one route written -> served (200 from the backend) by every proxy, ms\n")
	fmt.Fprintf(w, "   portico: admin PUT, then all %d data planes polled every ~%s; nginx: config written + SIGHUP, then polled\n", b.dataplanes, pollInterval)
	fmt.Fprintf(w, "%7s | %6s %8s %8s %8s %9s %8s | %6s %8s %8s %8s | %9s %9s | %s\n",
		"routes", "writes", "p50", "p99", "max", "1st-DP50", "put50", "writes", "ng p50", "ng p99", "ng max", "ratio p50", "ratio p99", "goal p99 <= 100 ms")
	for _, n := range b.sizes {
		r := b.res.prop[n]
		if r == nil {
			continue
		}
		p, f, u, x := summarize(r.portico), summarize(r.first), summarize(r.put), summarize(r.nginx)
		verdict := "met"
		if p.p99 > goalP99 {
			verdict = fmt.Sprintf("MISSED (%.1fx)", p.p99/goalP99)
		}
		fmt.Fprintf(w, "%7d | %6d %8.1f %8.1f %8.1f %9.1f %8.1f | %6d %8.1f %8.1f %8.1f | %8.2fx %8.2fx | %s\n",
			n, p.n, p.p50, p.p99, p.maxv, f.p50, u.p50, x.n, x.p50, x.p99, x.maxv, ratio(p.p50, x.p50), ratio(p.p99, x.p99), verdict)
	}
	if len(b.res.pgWrites) > 0 {
		p := summarize(b.res.pgWrites)
		fmt.Fprintf(w, "%7d | %6d %8.1f %8.1f %8.1f   (store: PostgreSQL)\n", b.sizes[len(b.sizes)-1], p.n, p.p50, p.p99, p.maxv)
	}

	fmt.Fprintf(w, "\n   CPU during the measured writes (from /proc/PID/stat; cp = control plane, dp = all data planes together,\n")
	fmt.Fprintf(w, "   bench = this program's pollers and admin client; polls = GETs sent per write) and the machine's load\n")
	for _, x := range b.res.noise {
		fmt.Fprintf(w, "   %7d routes: %s\n", x.n, x.perWrite())
		fmt.Fprintf(w, "   %7s         machine: ours %.0f%%, other tenants %.0f%% of %d CPUs\n", "", x.cpu.ours, x.cpu.other, cpus())
	}
	if len(b.res.timeline) > 0 {
		fmt.Fprintf(w, "\n   Where a write's wall-clock time goes (from the control plane's debug log and the data planes' logs), ms p50 (p90):\n")
		fmt.Fprintf(w, "   put = admin PUT; cp = PUT returned -> first push; fanout = first -> last push; dp = first push -> last data plane applied; seen = -> last poller saw 200\n")
		fmt.Fprintf(w, "   %-11s %7s %8s  %-15s %-15s %-15s %-15s %-15s %s\n", "run", "routes", "matched", "put", "cp", "fanout", "dp", "seen", "pushed KiB")
		for _, t := range b.res.timeline {
			fmt.Fprintf(w, "   %-11s %7d %8d ", t.who, t.n, t.matched)
			for i := range t.p50 {
				fmt.Fprintf(w, " %-15s", fmt.Sprintf("%.0f (%.0f)", t.p50[i], t.p90[i]))
			}
			fmt.Fprintf(w, " %.1f\n", t.bytes/1024)
		}
	}

	fmt.Fprintf(w, "\n2. Memory, MiB, after a %s pause (portico: VmRSS, Go heap in use, data plane 1's heap after a forced GC; nginx: master + 1 worker)\n", b.settle)
	fmt.Fprintf(w, "%7s | %7s %7s | %7s %7s %8s | %9s %9s | %s\n",
		"routes", "cp rss", "cp heap", "dp rss", "dp heap", "dp heapGC", "nginx rss", "nginx pss", "ratio dp rss / nginx rss, pss")
	for _, n := range b.memSizes {
		m := b.res.mem[n]
		if m == nil || m.portico == nil {
			continue
		}
		q := m.portico
		fmt.Fprintf(w, "%7d | %7.1f %7.1f | %7.1f %7.1f %9.1f | %9.1f %9.1f | %.2fx, %.2fx\n", n, mib(q.cpRSS), mib(q.cpHeap),
			mib(q.dpRSS), mib(q.dpHeap), mib(q.dpHeapGC), mib(m.nginxRSS), mib(m.nginxPSS),
			ratio(float64(q.dpRSS), float64(m.nginxRSS)), ratio(float64(q.dpRSS), float64(m.nginxPSS)))
	}

	fmt.Fprintf(w, "\n3. Bulk apply: POST /api/v1/apply (JSON array; several POSTs when over 7 MiB), with %d data planes connected\n", b.dataplanes)
	fmt.Fprintf(w, "%9s %9s %9s %6s %10s %s\n", "store", "routes", "to total", "POSTs", "apply ms", "served by every data plane after (ms)")
	for _, a := range b.res.applies {
		fmt.Fprintf(w, "%9s %9d %9d %6d %10.0f %.0f\n", a.store, a.n, a.from+a.n, len(a.posts), ms(sum(a.posts)), ms(a.served))
	}
	if b.res.profile != nil {
		b.res.profile.print(w)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func cpus() int { return runtime.NumCPU() }

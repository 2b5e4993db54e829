package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// perfHz is the sampling frequency given to perf record: one sample ≈ 1/perfHz s of CPU.
const perfHz = 999

// stack is one profile sample: frames leaf first, and the CPU time it stands for (ms).
type stack struct {
	frames []string
	ms     float64
}

// category is a line of a breakdown: samples with a frame matching every pattern of
// all and none of none. A sample goes to the first category it matches.
type category struct {
	name      string
	all, none []*regexp.Regexp
}

func cat(name string, all []string, none ...string) category {
	c := category{name: name}
	for _, a := range all {
		c.all = append(c.all, regexp.MustCompile(a))
	}
	for _, n := range none {
		c.none = append(c.none, regexp.MustCompile(n))
	}
	return c
}

// cpCategories split the control plane's CPU for one write. The names are the functions
// of this tree; a renamed function moves its time to "other".
var cpCategories = []category{
	cat("PUT: plan reads every object: SELECT + scan (store List)", []string{`store\.\(\*sqlStore\)\.Resources$`}, `store\.withRV$`, `store\.addTo$`),
	cat("PUT: ... each row's JSON re-encoded with resourceVersion (withRV)", []string{`store\.\(\*sqlStore\)\.Resources$`, `store\.withRV$`}),
	cat("PUT: ... each row decoded into its typed object (addTo)", []string{`store\.\(\*sqlStore\)\.Resources$`, `store\.addTo$`}),
	cat("PUT: the rest (references, INSERT + commit, render, HTTP)", []string{`admin\.\(\*server\)\.ServeHTTP$`}),
	cat("feed: ControlPlane.Update: translate.Translate (everything)", []string{`controlplane\.\(\*ControlPlane\)\.Update$`, `translate\.Translate$`}),
	cat("feed: ControlPlane.Update: the rest (validate)", []string{`controlplane\.\(\*ControlPlane\)\.Update$`}),
	cat("feed: change feed, mirror, publish (Get, sort, checks)", []string{`provider/store\.\(\*Provider\)\.`}),
	cat("dist: ControlPlane.Snapshot(labels): Select + translate again", []string{`controlplane\.\(\*ControlPlane\)\.Snapshot$`}),
	cat("dist: encode the full snapshot (compute)", []string{`distribute\.\(\*Server\)\.compute$`}),
	cat("dist: push: diff, delta encoding, gRPC, TLS", []string{`distribute\.|google\.golang\.org/grpc|crypto/tls`}),
	cat("GC background marking", []string{`runtime\.gcBgMarkWorker`}),
}

// dpCategories split a data plane's CPU for one write.
var dpCategories = []category{
	cat("config: write the last-good snapshot cache (writeCache)", []string{`distribute\.writeCache$`}),
	cat("config: receive, decode, rebuild, validate, swap", []string{`distribute\.\(\*client\)\.|distribute\.RunClient|distribute\.applyDelta|distribute\.Codec|proxy\.\(\*Runtime\)\.Apply`}),
	cat("serving the benchmark's polls (HTTP)", []string{`internal/proxy/h1\.|proxy\.\(\*httpListener\)`}),
	cat("gRPC transport, TLS, heartbeats", []string{`google\.golang\.org/grpc|crypto/tls`}),
	cat("GC background marking", []string{`runtime\.gcBgMarkWorker`}),
}

// breakdownRow is one category's CPU per write.
type breakdownRow struct {
	name string
	ms   float64
}

// breakdown sums the stacks into the categories (plus "other"), in ms per write.
func breakdown(stacks []stack, cats []category, writes int) (rows []breakdownRow, total float64) {
	sums := make([]float64, len(cats)+1)
	for _, s := range stacks {
		total += s.ms
		i := len(cats)
	next:
		for j, c := range cats {
			for _, re := range c.all {
				if !matchAny(re, s.frames) {
					continue next
				}
			}
			for _, re := range c.none {
				if matchAny(re, s.frames) {
					continue next
				}
			}
			i = j
			break
		}
		sums[i] += s.ms
	}
	w := float64(max(writes, 1))
	for i, c := range cats {
		rows = append(rows, breakdownRow{c.name, sums[i] / w})
	}
	rows = append(rows, breakdownRow{"other (runtime, syscalls, scheduler)", sums[len(cats)] / w})
	return rows, total / w
}

func matchAny(re *regexp.Regexp, frames []string) bool {
	for _, f := range frames {
		if re.MatchString(f) {
			return true
		}
	}
	return false
}

// perfStacks reads `perf script` output: one block per sample, a frame ("ADDR SYMBOL") a line.
func perfStacks(data string) ([]stack, error) {
	out, err := exec.Command("perf", "script", "-i", data, "-F", "ip,sym").Output()
	if err != nil {
		return nil, fmt.Errorf("perf script: %w", err)
	}
	var stacks []stack
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			stacks = append(stacks, stack{frames: cur, ms: 1000.0 / perfHz})
			cur = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
			flush()
		case len(f) >= 2:
			cur = append(cur, f[1])
		}
	}
	flush()
	return stacks, sc.Err()
}

// pprofStacks reads `go tool pprof -traces`: blocks of "<value> frame" then frames.
func pprofStacks(file string) ([]stack, error) {
	out, err := exec.Command("go", "tool", "pprof", "-traces", file).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -traces: %w", err)
	}
	var stacks []stack
	var cur *stack
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-----") {
			if cur != nil && len(cur.frames) > 0 {
				stacks = append(stacks, *cur)
			}
			cur = &stack{}
			continue
		}
		if cur == nil {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "bytes:") {
			continue
		}
		if len(cur.frames) == 0 && len(f) >= 2 {
			if d, err := time.ParseDuration(f[0]); err == nil {
				cur.ms = ms(d)
				f = f[1:]
			}
		}
		cur.frames = append(cur.frames, f[0])
	}
	if cur != nil && len(cur.frames) > 0 {
		stacks = append(stacks, *cur)
	}
	return stacks, nil
}

// profileResult is what -profile prints.
type profileResult struct {
	n, writes     int
	p50, p99      float64
	cp, dp        []breakdownRow
	cpTotal, dpTo float64
	dir           string
}

// profile collects, while writes run for profileSecs: a CPU profile of data plane 1
// (its /debug/pprof on the ops address) and, when perf exists, a perf profile of the
// control plane (which serves no pprof endpoint). Then it splits both by stage.
func (b *bench) profile(ctx context.Context, p *portico, n int) error {
	if err := os.MkdirAll(b.profileDir, 0o755); err != nil {
		return err
	}
	secs := b.profileSecs
	logf("profiling for %d s: data plane 1 (pprof) and the control plane (perf) while writes run", secs)
	dpFile := filepath.Join(b.profileDir, "dp1.cpu.pprof")
	dpDone := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.dpOps[0], secs))
		if err != nil {
			dpDone <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(dpFile)
		if err != nil {
			dpDone <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		f.Close()
		dpDone <- err
	}()
	var perf *proc
	cpFile := filepath.Join(b.profileDir, "cp.perf.data")
	if path, err := exec.LookPath("perf"); err == nil {
		perf, err = b.procs.start("perf", filepath.Join(b.profileDir, "perf.log"), nil, path, "record", "-F", strconv.Itoa(perfHz), "-g",
			"-p", strconv.Itoa(p.cp.pid()), "-o", cpFile, "--", "sleep", strconv.Itoa(secs))
		if err != nil {
			return err
		}
	} else {
		logf("WARNING: no perf: the control plane is not profiled")
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	var totals []time.Duration
	for time.Now().Before(deadline) {
		b.probe++
		s, err := p.write(ctx, b.probe)
		if err != nil {
			return fmt.Errorf("profiled write: %w", err)
		}
		totals = append(totals, s.total)
		b.logWrite("portico-profiled", n, b.probe, false, s)
		time.Sleep(b.gap)
	}
	if err := <-dpDone; err != nil {
		return fmt.Errorf("data plane profile: %w", err)
	}
	st := summarize(totals)
	r := &profileResult{n: n, writes: st.n, p50: st.p50, p99: st.p99, dir: b.profileDir}
	if perf != nil {
		<-perf.done
		if stacks, err := perfStacks(cpFile); err != nil {
			logf("WARNING: %v", err)
		} else {
			r.cp, r.cpTotal = breakdown(stacks, cpCategories, st.n)
		}
	}
	if stacks, err := pprofStacks(dpFile); err != nil {
		logf("WARNING: %v", err)
	} else {
		r.dp, r.dpTo = breakdown(stacks, dpCategories, st.n)
	}
	b.res.profile = r
	logf("profiled writes at %d routes: %d, p50 %.1f ms p99 %.1f ms; profiles in %s", n, st.n, st.p50, st.p99, b.profileDir)
	return nil
}

// printProfile writes the breakdown tables.
func (r *profileResult) print(w io.Writer) {
	fmt.Fprintf(w, "\n4. CPU profile at %d routes: %d writes in %s (p50 %.1f ms, p99 %.1f ms), CPU ms per write by stage\n", r.n, r.writes, r.dir, r.p50, r.p99)
	for _, part := range []struct {
		title string
		rows  []breakdownRow
		total float64
	}{
		{"control plane (perf record -g; it serves no pprof endpoint): perf report -i cp.perf.data", r.cp, r.cpTotal},
		{"data plane 1 (its /debug/pprof/profile): go tool pprof dp1.cpu.pprof", r.dp, r.dpTo},
	} {
		if part.rows == nil {
			continue
		}
		fmt.Fprintf(w, "   %s\n", part.title)
		for _, row := range part.rows {
			fmt.Fprintf(w, "     %-66s %7.1f ms %5.1f%%\n", row.name, row.ms, 100*row.ms/max(part.total, 1e-9))
		}
		fmt.Fprintf(w, "     %-66s %7.1f ms\n", "total", part.total)
	}
}

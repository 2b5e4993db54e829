package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// With the control plane at --log-level debug, it logs every push ("pushing delta|snapshot",
// with the data plane and the version), and the data planes log "applied snapshot" at
// info. Joined with each write's times, they split a write's wall-clock time into:
//
//	put       the admin PUT (plan, store write, commit)
//	cp        PUT returned → first push of the new version (change feed, translate, encode)
//	fanout    first → last push of that version
//	dp        first push → the last data plane logged it applied (decode, rebuild, swap)
//	seen      that log line → the last poller saw the backend's 200 (poll interval, contention)
//
// Log times have millisecond resolution.

// timeline is the medians and 90th percentiles (ms) of those phases over a set of writes.
type timeline struct {
	who      string
	n        int
	matched  int
	p50, p90 [5]float64
	bytes    float64 // median size of the message pushed

}

var (
	pushRE    = regexp.MustCompile(`^time=(\S+) .*msg="pushing (?:delta|snapshot)" .*version=(\S+) .*bytes=(\d+)`)
	appliedRE = regexp.MustCompile(`^time=(\S+) .*msg="applied snapshot" .*version=(\S+)`)
)

// logTimes reads the times of each version's matching lines from the files, and the
// third group (bytes pushed) of each version's last line, when the pattern has one.
func logTimes(re *regexp.Regexp, files ...string) (map[string][]time.Time, map[string]float64) {
	out, size := map[string][]time.Time{}, map[string]float64{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			m := re.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
				out[m[2]] = append(out[m[2]], t)
			}
			if len(m) > 3 {
				var v float64
				fmt.Sscan(m[3], &v)
				size[m[2]] = v
			}
		}
		fh.Close()
	}
	return out, size
}

// timeline joins the writes with the logs of p's processes. Each write is matched to the
// first version pushed after it started and before its last data plane served it.
func (p *portico) timeline(who string, n int, writes []sample) timeline {
	tl := timeline{who: who, n: n}
	pushes, size := logTimes(pushRE, filepath.Join(p.dir, "cp.log"))
	var dpLogs []string
	for i := range p.dps {
		dpLogs = append(dpLogs, filepath.Join(p.dir, fmt.Sprintf("dp%d.log", i+1)))
	}
	applied, _ := logTimes(appliedRE, dpLogs...)
	var phases [5][]float64
	var sizes []float64
	for _, w := range writes {
		putDone, served := w.start.Add(w.put), w.start.Add(w.total)
		// The previous write's pushes all came before it was served, so the first version
		// pushed after this write started is this write's (log times are truncated to the
		// millisecond). Its push may precede the PUT's answer reaching us: cp < 0.
		lo := w.start.Add(-time.Millisecond)
		var ver string
		var first time.Time
		for v, ts := range pushes {
			t := slices.MinFunc(ts, time.Time.Compare)
			if !t.Before(lo) && !t.After(served) && (ver == "" || t.Before(first)) {
				ver, first = v, t
			}
		}
		ap := applied[ver]
		if ver == "" || len(ap) == 0 {
			continue
		}
		lastPush := slices.MaxFunc(pushes[ver], time.Time.Compare)
		lastApplied := slices.MaxFunc(ap, time.Time.Compare)
		for i, d := range []time.Duration{w.put, first.Sub(putDone), lastPush.Sub(first), lastApplied.Sub(first), served.Sub(lastApplied)} {
			phases[i] = append(phases[i], ms(d))
		}
		sizes = append(sizes, size[ver])
		tl.matched++
	}
	if len(sizes) > 0 {
		slices.Sort(sizes)
		tl.bytes = sizes[(len(sizes)-1)/2]
	}
	for i, v := range phases {
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		tl.p50[i] = v[(len(v)-1)/2]
		tl.p90[i] = v[(len(v)-1)*9/10]
	}
	return tl
}

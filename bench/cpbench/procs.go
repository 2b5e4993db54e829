package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process this program started. Only such processes are ever signalled: by
// PID, never by name.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has been reaped
	err  error         // its exit status, valid after done
}

// procs tracks every started process so that stopAll can end them on any exit path.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs bin args with stdout and stderr appended to logPath. The child gets
// SIGKILL if this program dies without cleaning up (Pdeathsig), so nothing outlives it.
func (ps *procs) start(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process has not exited.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exited returns an error naming the process and the tail of its log when it is gone.
func (p *proc) exited() error {
	if p.alive() {
		return nil
	}
	return fmt.Errorf("%s (pid %d) exited: %v; log %s:\n%s", p.name, p.pid(), p.err, p.log, tail(p.log, 15))
}

// stop sends SIGTERM and waits up to 5 s; then SIGKILL to it and to the children it
// left (nginx workers), which are ours too.
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	kids := children(p.pid())
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	<-p.done
}

// stopAll stops every started process, newest first, concurrently per batch.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(list) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(p *proc) { defer wg.Done(); p.stop() }(list[i])
	}
	wg.Wait()
}

// stopSome stops the given processes concurrently and forgets them.
func (ps *procs) stopSome(some ...*proc) {
	var wg sync.WaitGroup
	for _, p := range some {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func(p *proc) { defer wg.Done(); p.stop() }(p)
	}
	wg.Wait()
	ps.mu.Lock()
	keep := ps.list[:0]
	for _, p := range ps.list {
		if p.alive() {
			keep = append(keep, p)
		}
	}
	ps.list = keep
	ps.mu.Unlock()
}

// children lists the PIDs whose parent is pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// statusKiB reads a "Key:  N kB" line of /proc/PID/status (VmRSS) or smaps_rollup (Pss).
func statusKiB(pid int, file, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return 0
}

// treeKiB sums VmRSS and Pss of pid and its children (nginx master + workers).
func treeKiB(pid int) (rss, pss int64) {
	for _, p := range append([]int{pid}, children(pid)...) {
		rss += statusKiB(p, "status", "VmRSS")
		pss += statusKiB(p, "smaps_rollup", "Pss")
	}
	return rss, pss
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ports hands out TCP ports that are free on every given IP, from below the ephemeral
// range so that no outgoing connection can hold one as its local port.
type ports struct {
	used map[int]bool
	seed int
}

func (pt *ports) next(ips ...string) (int, error) {
	if pt.used == nil {
		pt.used = map[int]bool{}
		pt.seed = os.Getpid()
	}
	for range 500 {
		pt.seed = (pt.seed*1103515245 + 12345) & 0x7fffffff
		p := 20000 + pt.seed%12000
		if pt.used[p] {
			continue
		}
		if free(p, ips) {
			pt.used[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no free port")
}

func free(port int, ips []string) bool {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		lns = append(lns, l)
	}
	return true
}

// userHZ is the unit of CPU times in /proc (USER_HZ, 100 on Linux).
const userHZ = 100

// cpuTicks is utime+stime of pid (fields 14 and 15 of /proc/PID/stat).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// busyTicks is the machine's busy CPU time (all but idle and iowait) from /proc/stat.
func busyTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var t int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		if i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			t += v
		}
	}
	return t
}

// role groups processes for the CPU accounting: "cp" (control plane), "dp" (data
// planes), "nginx", "echo" (the backend), "bench" (this program: pollers, admin client).
func (p *proc) role() string {
	switch {
	case strings.HasSuffix(p.name, "-cp"):
		return "cp"
	case strings.Contains(p.name, "-dp"):
		return "dp"
	case strings.HasPrefix(p.name, "nginx"):
		return "nginx"
	}
	return p.name
}

// ourTicks is the CPU time of this program and of every process it started (and their
// children: nginx workers), by role.
func (ps *procs) ourTicks() map[string]int64 {
	t := map[string]int64{"bench": cpuTicks(os.Getpid())}
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	for _, p := range list {
		if !p.alive() {
			continue
		}
		r := p.role()
		t[r] += cpuTicks(p.pid())
		for _, c := range children(p.pid()) {
			t[r] += cpuTicks(c)
		}
	}
	return t
}

// gauge measures CPU over a stretch of time: of each role of our processes, and of the
// rest of the machine (a noise gauge).
type gauge struct {
	ps   *procs
	at   time.Time
	busy int64
	ours map[string]int64
}

func (ps *procs) gauge() gauge {
	return gauge{ps: ps, at: time.Now(), busy: busyTicks(), ours: ps.ourTicks()}
}

// cpu is what a gauge measured: CPU seconds by role, and the shares (%) of the
// machine's capacity used by our processes and by everything else.
type cpu struct {
	byRole      map[string]float64
	other, ours float64
}

func (g gauge) read(ncpu int) cpu {
	secs := time.Since(g.at).Seconds()
	capacity := secs * userHZ * float64(ncpu)
	now := g.ps.ourTicks()
	c := cpu{byRole: map[string]float64{}}
	var o int64
	for r, t := range now {
		d := max(t-g.ours[r], 0)
		o += d
		c.byRole[r] = float64(d) / userHZ
	}
	if capacity > 0 {
		c.other = 100 * max(float64(busyTicks()-g.busy-o), 0) / capacity
		c.ours = 100 * float64(o) / capacity
	}
	return c
}

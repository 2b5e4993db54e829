package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxApplyBytes keeps each POST /api/v1/apply under the admin API's 8 MiB body limit.
const maxApplyBytes = 7 << 20

// admin is a client of the control plane's admin API.
type admin struct {
	base, token string
	c           *http.Client
}

func (a *admin) do(method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// put creates or replaces one object.
func (a *admin) put(kind, name string, obj []byte) error {
	code, b, err := a.do(http.MethodPut, "/api/v1/"+kind+"/"+name, obj)
	if err != nil {
		return err
	}
	if code != http.StatusOK && code != http.StatusCreated {
		return fmt.Errorf("PUT %s/%s: %d %s", kind, name, code, b)
	}
	return nil
}

// apply POSTs objects as JSON arrays of at most maxApplyBytes each and returns the time
// of each POST.
func (a *admin) apply(objs [][]byte) ([]time.Duration, error) {
	var took []time.Duration
	for len(objs) > 0 {
		var buf bytes.Buffer
		buf.WriteByte('[')
		n := 0
		for n < len(objs) && (n == 0 || buf.Len()+len(objs[n]) < maxApplyBytes) {
			if n > 0 {
				buf.WriteByte(',')
			}
			buf.Write(objs[n])
			n++
		}
		buf.WriteByte(']')
		start := time.Now()
		code, b, err := a.do(http.MethodPost, "/api/v1/apply", buf.Bytes())
		took = append(took, time.Since(start))
		if err != nil {
			return took, err
		}
		if code != http.StatusOK {
			return took, fmt.Errorf("POST /api/v1/apply (%d objects): %d %.300s", n, code, b)
		}
		objs = objs[n:]
	}
	return took, nil
}

// routeObj is bench route i: host h<i%hosts>.bench.local, PathPrefix /r/<i>.
func routeObj(i, hosts int) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"portico.dev/v1alpha1","kind":"Route","metadata":{"name":"bench-%d"},`+
		`"spec":{"gateways":["default"],"hosts":["h%d.bench.local"],"matches":[{"path":{"type":"PathPrefix","value":"/r/%d"}}],"backends":[{"upstream":"echo"}]}}`,
		i, i%hosts, i)
}

// probeObj is probe route k: any host, Exact /probe-<k>.
func probeObj(k int) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"portico.dev/v1alpha1","kind":"Route","metadata":{"name":"probe-%d"},`+
		`"spec":{"gateways":["default"],"matches":[{"path":{"type":"Exact","value":"/probe-%d"}}],"backends":[{"upstream":"echo"}]}}`, k, k)
}

// portico is one control plane with its data planes.
type portico struct {
	b       *bench
	dir     string
	cp      *proc
	dps     []*proc
	dpOps   []string // ops base URLs
	dpAddrs []string // listener base URLs
	adm     *admin
}

// startPortico starts a control plane (SQLite in its data dir, or storeDSN), creates the
// Gateway and the Upstream, then starts the data planes and waits until each runs them.
func (b *bench) startPortico(ctx context.Context, name, storeDSN string) (*portico, error) {
	p := &portico{b: b, dir: filepath.Join(b.tmp, name)}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	adminPort, err := b.ports.next("127.0.0.1")
	if err != nil {
		return nil, err
	}
	xdsPort, err := b.ports.next("127.0.0.1")
	if err != nil {
		return nil, err
	}
	cpDir := filepath.Join(p.dir, "cp")
	args := []string{"control", "--data-dir", cpDir, "--admin-addr", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--xds-addr", fmt.Sprintf("127.0.0.1:%d", xdsPort), "--log-level", b.cpLogLevel}
	if storeDSN != "" {
		args = append(args, "--store", storeDSN)
	}
	if p.cp, err = b.procs.start(name+"-cp", filepath.Join(p.dir, "cp.log"), nil, b.bin, args...); err != nil {
		return nil, err
	}
	p.adm = &admin{base: fmt.Sprintf("http://127.0.0.1:%d", adminPort), c: &http.Client{Timeout: 5 * time.Minute}}
	if err := waitFor(ctx, 30*time.Second, p.cp, func() bool {
		code, _, err := p.adm.do(http.MethodGet, "/readyz", nil)
		return err == nil && code == http.StatusOK
	}); err != nil {
		return nil, fmt.Errorf("control plane not ready: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(cpDir, "admin.token"))
	if err != nil {
		return nil, err
	}
	p.adm.token = strings.TrimSpace(string(tok))
	if err := p.adm.put("gateways", "default", fmt.Appendf(nil,
		`{"apiVersion":"portico.dev/v1alpha1","kind":"Gateway","metadata":{"name":"default"},"spec":{"listeners":[{"name":"http","port":%d,"protocol":"HTTP"}]}}`, b.listenPort)); err != nil {
		return nil, err
	}
	if err := p.adm.put("upstreams", "echo", fmt.Appendf(nil,
		`{"apiVersion":"portico.dev/v1alpha1","kind":"Upstream","metadata":{"name":"echo"},"spec":{"endpoints":[{"address":"127.0.0.1:%d","weight":1}],"loadBalancer":{"algorithm":"round-robin"}}}`, b.echoPort)); err != nil {
		return nil, err
	}
	for i := 1; i <= b.dataplanes; i++ {
		ops, err := b.ports.next("127.0.0.1")
		if err != nil {
			return nil, err
		}
		ip := fmt.Sprintf("127.0.1.%d", i)
		dp, err := b.procs.start(fmt.Sprintf("%s-dp%d", name, i), filepath.Join(p.dir, fmt.Sprintf("dp%d.log", i)), nil, b.bin,
			"proxy", "--control-plane", fmt.Sprintf("127.0.0.1:%d", xdsPort), "--certs", cpDir,
			"--data-dir", filepath.Join(p.dir, fmt.Sprintf("dp%d", i)), "--ops-addr", fmt.Sprintf("127.0.0.1:%d", ops),
			"--listen-address", ip, "--access-log", "off", "--labels", "gateway=default", "--id", fmt.Sprintf("dp%d", i))
		if err != nil {
			return nil, err
		}
		p.dps = append(p.dps, dp)
		p.dpOps = append(p.dpOps, fmt.Sprintf("http://127.0.0.1:%d", ops))
		p.dpAddrs = append(p.dpAddrs, fmt.Sprintf("http://%s:%d", ip, b.listenPort))
	}
	// Ready: every data plane answers on its listener (404: no route yet).
	for i, dp := range p.dps {
		c := &http.Client{Timeout: time.Second}
		if err := waitFor(ctx, 30*time.Second, dp, func() bool {
			resp, err := c.Get(p.dpAddrs[i] + "/")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return true
		}); err != nil {
			return nil, fmt.Errorf("data plane %d not serving: %w", i+1, err)
		}
	}
	return p, nil
}

// alive returns an error when the control plane or a data plane has exited.
func (p *portico) alive() error {
	for _, x := range append([]*proc{p.cp}, p.dps...) {
		if err := x.exited(); err != nil {
			return err
		}
	}
	return nil
}

func (p *portico) stop() { p.b.procs.stopSome(append([]*proc{p.cp}, p.dps...)...) }

// bulk applies routes [from, to) and waits until every data plane serves the last one.
// It returns the POST times and the time until the last data plane served it.
func (p *portico) bulk(ctx context.Context, from, to int) ([]time.Duration, time.Duration, error) {
	objs := make([][]byte, 0, to-from)
	for i := from; i < to; i++ {
		objs = append(objs, routeObj(i, p.b.hosts))
	}
	start := time.Now()
	took, err := p.adm.apply(objs)
	if err != nil {
		return took, 0, err
	}
	last := to - 1
	_, _, err = pollAll(ctx, p.pollers(), start, fmt.Sprintf("/r/%d", last), fmt.Sprintf("h%d.bench.local", last%p.b.hosts), 10*time.Minute, p.alive)
	return took, time.Since(start), err
}

// write is one measured write: PUT probe-k, then every data plane polled until it serves
// /probe-k from the backend.
func (p *portico) write(ctx context.Context, k int) (sample, error) {
	start := time.Now()
	if err := p.adm.put("routes", "probe-"+strconv.Itoa(k), probeObj(k)); err != nil {
		return sample{}, err
	}
	put := time.Since(start)
	first, last, err := pollAll(ctx, p.pollers(), start, "/probe-"+strconv.Itoa(k), "probe.bench", p.b.timeout, p.alive)
	return sample{start: start, total: last, first: first, put: put}, err
}

func (p *portico) pollers() []*poller {
	if p.b.dpPollers == nil || len(p.b.dpPollers) != len(p.dpAddrs) || p.b.dpPollers[0].base != p.dpAddrs[0] {
		p.b.dpPollers = nil
		for _, a := range p.dpAddrs {
			p.b.dpPollers = append(p.b.dpPollers, newPoller(a, true))
		}
	}
	return p.b.dpPollers
}

// memory reads, after the settle pause, the RSS and Go heap in use of the control plane
// (its /metrics) and of data plane 1, whose heap is read from /debug/pprof/heap?debug=1:
// its /metrics has series per route (27 MB at 10k routes), and scraping it would inflate
// what is measured. Then data plane 1's live heap after a forced GC (gc=1).
func (p *portico) memory(ctx context.Context) (memSample, error) {
	select {
	case <-ctx.Done():
		return memSample{}, ctx.Err()
	case <-time.After(p.b.settle):
	}
	var m memSample
	m.cpRSS = statusKiB(p.cp.pid(), "status", "VmRSS")
	m.dpRSS = statusKiB(p.dps[0].pid(), "status", "VmRSS")
	m.cpHeap = heapInuse(p.adm.base + "/metrics")
	m.dpHeap = memStat(p.dpOps[0]+"/debug/pprof/heap?debug=1", "HeapInuse")
	m.dpHeapGC = memStat(p.dpOps[0]+"/debug/pprof/heap?debug=1&gc=1", "HeapInuse")
	return m, p.alive()
}

// heapInuse reads go_memstats_heap_inuse_bytes (KiB) from a Prometheus endpoint; 0 if absent.
func heapInuse(url string) int64 {
	return scan(url, "go_memstats_heap_inuse_bytes ")
}

// memStat reads "# Name = N" (KiB) from the runtime.MemStats a debug=1 heap profile ends with.
func memStat(url, name string) int64 {
	return scan(url, "# "+name+" = ")
}

func scan(url, prefix string) int64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f / 1024)
		}
	}
	return 0
}

// dataPlanes is the number of data planes the control plane lists.
func (p *portico) dataPlanes() int {
	_, b, err := p.adm.do(http.MethodGet, "/api/v1/dataplanes", nil)
	if err != nil {
		return -1
	}
	var l struct {
		Items []json.RawMessage `json:"items"`
	}
	if json.Unmarshal(b, &l) != nil {
		return -1
	}
	return len(l.Items)
}

package test

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico.dev/portico/internal/distribute"
)

// End-to-end fault tests of the control plane / data plane split: real `portico control`
// and `portico proxy --control-plane` processes killed with SIGKILL, and a private
// PostgreSQL server stopped in immediate mode while writes run.

// TestFaultControlPlaneKilledUnderLoad kills the control plane with SIGKILL while four
// clients send a steady load through the data plane: no request may fail. The control
// plane then starts again on the same data dir and addresses; the data plane reconnects
// (still under load, still without a failure) and serves a route written afterwards.
func TestFaultControlPlaneKilledUnderLoad(t *testing.T) {
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	cp := newControlPlane(t, "")
	cp.start(t)
	dp := newDataPlane(t, cp, "dp-load")
	dp.start(t)
	cp.apply(t, basicConfig(port, backend, "/load"))
	waitServed(t, base+"/load/x", 20*time.Second, dp.proc)
	cp.waitConnected(t, dp.id, 10*time.Second)

	stop := make(chan struct{})
	wait := startSteadyLoad(base+"/load/x", 4, stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wait()
		}
	}()
	time.Sleep(time.Second)
	t.Logf("%s: SIGKILL control plane (pid %d)", time.Now().Format("15:04:05.000"), cp.proc.cmd.Process.Pid)
	cp.proc.kill()
	time.Sleep(time.Second)
	if dp.proc.exited() {
		t.Fatalf("the data plane exited when the control plane died: %v", dp.proc.cmd.ProcessState)
	}

	t.Logf("%s: starting the control plane again", time.Now().Format("15:04:05.000"))
	cp.start(t)
	cp.waitConnected(t, dp.id, 30*time.Second)
	t.Logf("%s: data plane reconnected", time.Now().Format("15:04:05.000"))
	time.Sleep(500 * time.Millisecond) // keep the load on while the new stream settles
	close(stop)
	stopped = true
	res := wait()
	t.Logf("load: %d requests answered 200, %d failed", res.ok, res.failed)
	if res.failed > 0 {
		t.Fatalf("%d proxied requests failed across the control-plane kill and restart (of %d); first failures:\n%s",
			res.failed, res.ok+res.failed, strings.Join(res.failures, "\n"))
	}
	if res.ok < 100 {
		t.Fatalf("only %d requests were sent: the load did not run", res.ok)
	}

	// A change made on the restarted control plane reaches the reconnected data plane.
	cp.putRoute(t, "after", "/after")
	waitServed(t, base+"/after/x", 20*time.Second, dp.proc, cp.proc)
	if code, err := status(defaultClient, base+"/load/x"); code != 200 {
		t.Fatalf("the old route stopped serving: %d %v", code, err)
	}
}

// TestFaultDataPlaneRestartsFromDiskWithoutControlPlane kills a data plane, then the
// control plane, and starts the data plane again alone: it serves the last snapshot from
// its data dir. When the control plane comes back, the data plane reconnects and picks
// up a change.
func TestFaultDataPlaneRestartsFromDiskWithoutControlPlane(t *testing.T) {
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	cp := newControlPlane(t, "")
	cp.start(t)
	dp := newDataPlane(t, cp, "dp-disk")
	dp.start(t)
	cp.apply(t, basicConfig(port, backend, "/one"))
	waitServed(t, base+"/one/x", 20*time.Second, dp.proc)
	// The cache is written before the ack: once the acked version is on disk, the disk
	// holds the configuration that serves /one.
	waitCond(t, 10*time.Second, dp.proc, "the acked snapshot is in "+dp.cacheFile(), func() (bool, string) {
		snap, err := distribute.LoadCache(dp.cacheFile())
		if err != nil {
			return false, err.Error()
		}
		items, raw, err := cp.dataPlanes()
		for _, it := range items {
			if it.ID == dp.id && it.AckedVersion == snap.Version && it.SentVersion == snap.Version {
				return true, ""
			}
		}
		return false, fmt.Sprintf("cache has %s; control plane lists %s %v", snap.Version, raw, err)
	})

	dp.proc.kill()
	cp.proc.kill()
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the gateway port still accepts after the data plane was killed")
	}
	if c, err := net.DialTimeout("tcp", cp.xds, time.Second); err == nil {
		c.Close()
		t.Fatal("the control plane still accepts after it was killed")
	}

	dp.start(t)
	waitServed(t, base+"/one/x", 10*time.Second, dp.proc)
	if code, err := status(defaultClient, "http://"+dp.ops+"/readyz"); code != 200 {
		t.Fatalf("data plane serving from disk is not ready: %d %v", code, err)
	}
	if !strings.Contains(dp.proc.out.String(), "cached snapshot") {
		t.Logf("note: the data plane did not log that it started from the cached snapshot")
	}
	time.Sleep(300 * time.Millisecond) // a few reconnect attempts fail meanwhile
	if code, err := status(defaultClient, base+"/one/x"); code != 200 {
		t.Fatalf("serving from disk stopped while the control plane is down: %d %v", code, err)
	}

	cp.start(t)
	cp.waitConnected(t, dp.id, 30*time.Second)
	cp.putRoute(t, "two", "/two")
	waitServed(t, base+"/two/x", 20*time.Second, dp.proc, cp.proc)
	if code, err := status(defaultClient, base+"/one/x"); code != 200 {
		t.Fatalf("/one stopped serving after the reconnect: %d %v", code, err)
	}
	// The cache is written right after the snapshot is applied.
	waitCond(t, 10*time.Second, dp.proc, "the snapshot cache holds the route written after the reconnect", func() (bool, string) {
		snap, err := distribute.LoadCache(dp.cacheFile())
		if err != nil {
			return false, err.Error()
		}
		b, _ := json.Marshal(snap)
		return strings.Contains(string(b), `"/two"`), string(b)
	})
}

// write is one admin API write made during the PostgreSQL restart and its outcome.
type write struct {
	kind   string // put, counter or apply
	names  []string
	paths  []string
	n      int // counter value
	phase  int32
	code   int
	body   string
	err    error
	acked  bool
	failed bool // a clean 503 unavailable
}

// TestFaultPostgresRestartDuringWrites stops a private PostgreSQL (immediate mode, like a
// crash) while writers PUT routes, update a counter route and POST 5-route applies, and
// starts it again a second later. Failed writes must be clean 503s with the error
// envelope (no 500, no hang); every acknowledged write must be present with its content
// afterwards; no apply may be half applied; writes succeed again after the restart; and
// a route written after the restart reaches the data plane (the change feed recovers).
// The data plane keeps serving throughout.
func TestFaultPostgresRestartDuringWrites(t *testing.T) {
	pg := startPrivatePostgres(t)
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	cp := newControlPlane(t, pg.dsn())
	cp.start(t)
	dp := newDataPlane(t, cp, "dp-pg")
	dp.start(t)
	cp.apply(t, basicConfig(port, backend, "/base"))
	waitServed(t, base+"/base/x", 20*time.Second, dp.proc, cp.proc)

	// The data plane does not depend on the database.
	stopProbe := make(chan struct{})
	probe := startSteadyLoad(base+"/base/x", 1, stopProbe)
	var stopProbeOnce sync.Once
	defer stopProbeOnce.Do(func() { close(stopProbe); probe() })

	var phase atomic.Int32 // 0 before the stop, 1 database down, 2 after the restart
	var mu sync.Mutex
	var writes []*write
	okIn := [3]map[string]int{{}, {}, {}}
	record := func(w *write) {
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, w)
		if w.acked {
			okIn[w.phase][w.kind]++
		}
	}
	do := func(w *write, method, path, body string) {
		w.phase = phase.Load()
		code, b, err := cp.do(method, path, "application/json", body)
		w.code, w.body, w.err = code, string(b), err
		w.acked = err == nil && code/100 == 2
		w.failed = err == nil && code == 503 && envelopeCode(b) == "unavailable"
		record(w)
		if w.acked {
			time.Sleep(5 * time.Millisecond)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopWriters := make(chan struct{})
	var wg sync.WaitGroup
	writer := func(fn func(i int) *write) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; ; i++ {
				select {
				case <-stopWriters:
					return
				default:
				}
				fn(i)
			}
		}()
	}
	writer(func(i int) *write {
		name := fmt.Sprintf("p-%d", i)
		w := &write{kind: "put", names: []string{name}, paths: []string{"/" + name}}
		do(w, "PUT", "/api/v1/routes/"+name, routeJSON(name, "/"+name))
		return w
	})
	writer(func(i int) *write {
		path := fmt.Sprintf("/counter/%d", i)
		w := &write{kind: "counter", names: []string{"counter"}, paths: []string{path}, n: i}
		do(w, "PUT", "/api/v1/routes/counter", routeJSON("counter", path))
		return w
	})
	for k := range 2 {
		writer(func(i int) *write {
			w := &write{kind: "apply"}
			var docs []string
			for j := range 5 {
				name := fmt.Sprintf("a%d-%d-%d", k, i, j)
				w.names = append(w.names, name)
				w.paths = append(w.paths, "/"+name)
				docs = append(docs, routeJSON(name, "/"+name))
			}
			do(w, "POST", "/api/v1/apply", "["+strings.Join(docs, ",")+"]")
			return w
		})
	}
	writersStopped := false
	defer func() {
		if !writersStopped {
			close(stopWriters)
			wg.Wait()
		}
	}()
	okCount := func(p int32, kind string) int {
		mu.Lock()
		defer mu.Unlock()
		return okIn[p][kind]
	}
	waitWrites := func(p int32, timeout time.Duration) {
		t.Helper()
		waitCond(t, timeout, cp.proc, fmt.Sprintf("acknowledged writes of every kind in phase %d", p), func() (bool, string) {
			ok := okCount(p, "put") >= 3 && okCount(p, "counter") >= 3 && okCount(p, "apply") >= 3
			return ok, fmt.Sprintf("put %d, counter %d, apply %d", okCount(p, "put"), okCount(p, "counter"), okCount(p, "apply"))
		})
	}
	waitWrites(0, 20*time.Second)

	phase.Store(1)
	t.Logf("%s: stopping PostgreSQL (immediate)", time.Now().Format("15:04:05.000"))
	pg.stop(t)
	downAt := time.Now()
	// The admin API answers at once with a clean 503 while the database is down.
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/v1/routes", ""},
		{"GET", "/api/v1/routes/counter", ""},
		{"PUT", "/api/v1/routes/while-down", routeJSON("while-down", "/while-down")},
		{"POST", "/api/v1/apply", "[" + routeJSON("while-down-2", "/while-down-2") + "]"},
	} {
		start := time.Now()
		code, h, b, err := cp.doHeader(r.method, r.path, "application/json", r.body)
		if err != nil || code != 503 || envelopeCode(b) != "unavailable" || h.Get("Retry-After") == "" {
			t.Errorf("%s %s with the database down: %d %v (Retry-After %q) %s; want 503 with code unavailable and Retry-After",
				r.method, r.path, code, err, h.Get("Retry-After"), b)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s %s with the database down took %v", r.method, r.path, took)
		}
	}
	time.Sleep(time.Until(downAt.Add(time.Second)))
	t.Logf("%s: starting PostgreSQL again", time.Now().Format("15:04:05.000"))
	pg.start(t)
	phase.Store(2)
	upAt := time.Now()
	waitWrites(2, 30*time.Second)
	t.Logf("%s: writes succeed again %v after the restart", time.Now().Format("15:04:05.000"), time.Since(upAt).Round(time.Millisecond))
	close(stopWriters)
	wg.Wait()
	writersStopped = true

	// Outcomes: 2xx or a clean 503, nothing else.
	var bad []string
	failedIn := [3]int{}
	for _, w := range writes {
		switch {
		case w.acked:
		case w.failed:
			failedIn[w.phase]++
		default:
			bad = append(bad, fmt.Sprintf("%s %v (phase %d): %d %v %s", w.kind, w.names, w.phase, w.code, w.err, w.body))
		}
	}
	t.Logf("writes: %d; clean 503s by phase (started before the stop / from the stop to the restart / after): %v; acknowledged in the middle phase (started before the server was down): %v",
		len(writes), failedIn, okIn[1])
	if len(bad) > 0 {
		if len(bad) > 20 {
			bad = append(bad[:20], "…")
		}
		t.Errorf("writes that were neither acknowledged nor a clean 503 unavailable:\n%s", strings.Join(bad, "\n"))
	}
	if failedIn[1]+failedIn[2] == 0 {
		t.Errorf("no write failed while PostgreSQL was down: the outage was not exercised")
	}

	// What the store holds now.
	stored := map[string]string{} // route name → path
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Matches []struct {
					Path struct {
						Value string `json:"value"`
					} `json:"path"`
				} `json:"matches"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal(cp.must(t, "GET", "/api/v1/routes", "", ""), &list); err != nil {
		t.Fatal(err)
	}
	for _, it := range list.Items {
		path := ""
		if len(it.Spec.Matches) > 0 {
			path = it.Spec.Matches[0].Path.Value
		}
		stored[it.Metadata.Name] = path
	}
	for _, name := range []string{"while-down", "while-down-2"} {
		if _, ok := stored[name]; ok {
			t.Errorf("route %s, refused with 503 while the database was down, exists", name)
		}
	}
	lastCounter, counterAttempts := 0, map[int]*write{}
	for _, w := range writes {
		switch w.kind {
		case "counter":
			counterAttempts[w.n] = w
			if w.acked {
				lastCounter = max(lastCounter, w.n)
			}
			continue
		}
		present := 0
		for i, name := range w.names {
			path, ok := stored[name]
			if ok {
				present++
				if path != w.paths[i] {
					t.Errorf("%s %s: stored path %q, written %q", w.kind, name, path, w.paths[i])
				}
			} else if w.acked {
				t.Errorf("acknowledged %s of %s (phase %d, %d) is missing afterwards", w.kind, name, w.phase, w.code)
			}
		}
		if present != 0 && present != len(w.names) {
			t.Errorf("apply of %v (phase %d, answered %d %v) is half applied: %d of %d routes exist", w.names, w.phase, w.code, w.err, present, len(w.names))
		}
	}
	// The counter route holds the last acknowledged value, or a later one whose write
	// failed after the commit (a lost reply), never an earlier one.
	var final int
	if p, ok := stored["counter"]; !ok {
		t.Errorf("the counter route is missing (last acknowledged value %d)", lastCounter)
	} else if _, err := fmt.Sscanf(p, "/counter/%d", &final); err != nil {
		t.Errorf("counter route path %q", p)
	} else if final < lastCounter {
		t.Errorf("counter route holds %d, but %d was acknowledged later", final, lastCounter)
	} else if final > lastCounter && counterAttempts[final] != nil && counterAttempts[final].acked {
		t.Errorf("counter route holds %d, inconsistent with the acknowledgements", final)
	} else if final > lastCounter {
		t.Logf("the counter holds %d, a write answered 503 after its commit (last acknowledged %d)", final, lastCounter)
	}

	// The control plane's change feed recovered: a route written now reaches the data plane.
	cp.putRoute(t, "after-restart", "/after-restart")
	written := time.Now()
	if ok, detail := pollServed(base+"/after-restart/x", 20*time.Second); !ok {
		t.Fatalf("a route written after the PostgreSQL restart is stored but the data plane does not serve it (%s): "+
			"the control plane did not pick up the change after the database came back (change feed / store source)", detail)
	}
	t.Logf("the route written after the restart was served %v after the write", time.Since(written).Round(time.Millisecond))
	var res *loadTally
	stopProbeOnce.Do(func() { close(stopProbe); res = probe() })
	if res.failed > 0 {
		t.Errorf("the data plane failed %d of %d requests while PostgreSQL restarted:\n%s", res.failed, res.ok+res.failed, strings.Join(res.failures, "\n"))
	}
	if cp.proc.exited() {
		t.Fatalf("the control plane exited: %v", cp.proc.cmd.ProcessState)
	}
}

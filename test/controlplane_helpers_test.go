package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Helpers for the control-plane end-to-end tests: portico processes that can be killed
// with SIGKILL and started again on the same addresses and folders, an admin API client,
// and a private PostgreSQL instance.

// bgProc is a portico process started by a test; its output is shown when the test fails.
type bgProc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited and been reaped
}

// startBg starts portico with args. Cleanup kills it (by its PID) if it still runs and,
// when the test failed, logs its output under name.
func startBg(t *testing.T, name string, args ...string) *bgProc {
	t.Helper()
	return startBgCommand(t, name, portico(t), args...)
}

// startBgCommand is startBg for any program.
func startBgCommand(t *testing.T, name, path string, args ...string) *bgProc {
	t.Helper()
	cmd := exec.Command(path, args...)
	p := &bgProc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("---- output of %s (pid %d, %s) ----\n%s", name, cmd.Process.Pid, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *bgProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to this process and waits until it is reaped.
func (p *bgProc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// controlPlane is a `portico control` with fixed addresses and data dir, so it can be
// started again after a kill.
type controlPlane struct {
	name     string
	dataDir  string
	admin    string // host:port
	xds      string // host:port
	storeDSN string // "" = SQLite in dataDir
	token    string
	proc     *bgProc
	starts   int
	client   *http.Client
}

func newControlPlane(t *testing.T, storeDSN string) *controlPlane {
	return &controlPlane{
		name:     "control",
		dataDir:  t.TempDir(),
		admin:    fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		xds:      fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		storeDSN: storeDSN,
		client:   &http.Client{Timeout: 10 * time.Second},
	}
}

// start runs the control plane and waits until its admin API is ready.
func (c *controlPlane) start(t *testing.T) {
	t.Helper()
	args := []string{"control", "--data-dir", c.dataDir, "--admin-addr", c.admin, "--xds-addr", c.xds}
	if c.storeDSN != "" {
		args = append(args, "--store", c.storeDSN)
	}
	c.starts++
	c.proc = startBg(t, fmt.Sprintf("%s #%d", c.name, c.starts), args...)
	waitCond(t, 20*time.Second, c.proc, "control plane admin API /readyz answers 200", func() (bool, string) {
		code, body, err := c.do("GET", "/readyz", "", "")
		return err == nil && code == 200, fmt.Sprintf("%d %s %v", code, body, err)
	})
	if c.token == "" {
		b, err := os.ReadFile(filepath.Join(c.dataDir, "admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		c.token = strings.TrimSpace(string(b))
	}
}

// do sends one admin API request with the admin token; it never fails the test.
func (c *controlPlane) do(method, path, contentType, body string) (int, []byte, error) {
	code, _, b, err := c.doHeader(method, path, contentType, body)
	return code, b, err
}

// doHeader is do that also returns the response headers.
func (c *controlPlane) doHeader(method, path, contentType, body string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, "http://"+c.admin+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// must sends a request and fails the test unless the status is 2xx.
func (c *controlPlane) must(t *testing.T, method, path, contentType, body string) []byte {
	t.Helper()
	code, b, err := c.do(method, path, contentType, body)
	if err != nil || code/100 != 2 {
		t.Fatalf("%s %s: %d %s %v\nrequest body:\n%s", method, path, code, b, err, body)
	}
	return b
}

// apply posts multi-document YAML to /api/v1/apply.
func (c *controlPlane) apply(t *testing.T, yaml string) {
	t.Helper()
	c.must(t, "POST", "/api/v1/apply", "application/yaml", yaml)
}

// putRoute stores a Route name matching PathPrefix path, sent to the Upstream echo.
func (c *controlPlane) putRoute(t *testing.T, name, path string) {
	t.Helper()
	c.must(t, "PUT", "/api/v1/routes/"+name, "application/json", routeJSON(name, path))
}

func routeJSON(name, path string) string {
	return fmt.Sprintf(`{"apiVersion":"portico.dev/v1alpha1","kind":"Route","metadata":{"name":%q},"spec":{"matches":[{"path":{"type":"PathPrefix","value":%q}}],"backends":[{"upstream":"echo"}]}}`, name, path)
}

// connectedDataPlane is one item of GET /api/v1/dataplanes.
type connectedDataPlane struct {
	ID           string `json:"id"`
	AckedVersion string `json:"ackedVersion"`
	SentVersion  string `json:"sentVersion"`
	Stale        bool   `json:"stale"`
}

// dataPlanes lists the data planes connected to this control plane.
func (c *controlPlane) dataPlanes() ([]connectedDataPlane, string, error) {
	code, b, err := c.do("GET", "/api/v1/dataplanes", "", "")
	if err != nil {
		return nil, "", err
	}
	if code != 200 {
		return nil, string(b), fmt.Errorf("status %d", code)
	}
	var list struct {
		Items []connectedDataPlane `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, string(b), err
	}
	return list.Items, string(b), nil
}

// waitConnected waits until the control plane lists the data plane id, not stale, and
// returns its entry.
func (c *controlPlane) waitConnected(t *testing.T, id string, timeout time.Duration) connectedDataPlane {
	t.Helper()
	var found connectedDataPlane
	waitCond(t, timeout, c.proc, "control plane lists data plane "+id+" in GET /api/v1/dataplanes", func() (bool, string) {
		items, raw, err := c.dataPlanes()
		for _, it := range items {
			if it.ID == id && !it.Stale {
				found = it
				return true, raw
			}
		}
		return false, fmt.Sprintf("%s %v", raw, err)
	})
	return found
}

// dataPlane is a `portico proxy --control-plane` with a fixed data dir and ops address.
type dataPlane struct {
	id      string
	cp      *controlPlane
	dataDir string
	ops     string
	proc    *bgProc
	starts  int
}

func newDataPlane(t *testing.T, cp *controlPlane, id string) *dataPlane {
	return &dataPlane{id: id, cp: cp, dataDir: t.TempDir(), ops: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
}

// start runs the data plane and waits for its ops endpoint (not for a configuration).
func (d *dataPlane) start(t *testing.T) {
	t.Helper()
	d.starts++
	d.proc = startBg(t, fmt.Sprintf("data plane %s #%d", d.id, d.starts),
		"proxy", "--control-plane", d.cp.xds, "--certs", d.cp.dataDir, "--data-dir", d.dataDir,
		"--ops-addr", d.ops, "--access-log", "off", "--id", d.id)
	waitCond(t, 20*time.Second, d.proc, "data plane ops /healthz answers 200", func() (bool, string) {
		code, err := status(http.DefaultClient, "http://"+d.ops+"/healthz")
		return code == 200, fmt.Sprint(code, err)
	})
}

func (d *dataPlane) cacheFile() string { return filepath.Join(d.dataDir, "dataplane-snapshot.json") }

// status GETs url and returns the status code.
func status(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// defaultClient is a client with a bound on every request.
var defaultClient = &http.Client{Timeout: 5 * time.Second}

// pollServed polls url until it answers 200 or timeout passes; detail is the last answer.
func pollServed(url string, timeout time.Duration) (ok bool, detail string) {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		code, err := status(c, url)
		if code == 200 {
			return true, ""
		}
		detail = fmt.Sprintf("last answer %d %v", code, err)
		if time.Now().After(deadline) {
			return false, detail
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitServed waits until url answers 200.
func waitServed(t *testing.T, url string, timeout time.Duration, procs ...*bgProc) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	waitCond(t, timeout, nil, url+" answers 200", func() (bool, string) {
		for _, p := range procs {
			if p.exited() {
				return false, p.name + " exited"
			}
		}
		code, err := status(c, url)
		return code == 200, fmt.Sprint(code, " ", err)
	})
}

// waitCond polls cond every 25ms until it holds; after timeout (or when p exits) it
// fails the test with what and the last detail cond returned.
func waitCond(t *testing.T, timeout time.Duration, p *bgProc, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if p != nil && p.exited() {
			t.Fatalf("waiting for %s: %s exited (%v); last: %s", what, p.name, p.cmd.ProcessState, detail)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %v; last: %s", what, timeout, detail)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// loadTally counts the outcome of a steady load.
type loadTally struct {
	mu       sync.Mutex
	ok       int
	failed   int
	failures []string // the first few, with the time they happened
}

func (r *loadTally) add(code int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && code == 200 {
		r.ok++
		return
	}
	r.failed++
	if len(r.failures) < 20 {
		r.failures = append(r.failures, fmt.Sprintf("%s: status %d, error %v", time.Now().Format("15:04:05.000"), code, err))
	}
}

// startSteadyLoad sends GETs to url from n clients until stop is closed; the returned function
// waits for them and gives the result.
func startSteadyLoad(url string, n int, stop <-chan struct{}) func() *loadTally {
	res := &loadTally{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, err := status(c, url)
				res.add(code, err)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() *loadTally { wg.Wait(); return res }
}

// errorEnvelope is the admin API error body.
type errorEnvelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// envelopeCode returns error.code of an admin API error body ("" when it is not one).
func envelopeCode(body []byte) string {
	var e errorEnvelope
	if json.Unmarshal(bytes.TrimSpace(body), &e) != nil {
		return ""
	}
	return e.Error.Code
}

// ---- a private PostgreSQL instance ----

const pgBin = "/usr/lib/postgresql/15/bin"

// privatePostgres is a PostgreSQL server in a temp dir on its own port, never the
// machine's shared instance.
type privatePostgres struct {
	dir  string // owned by the postgres user when running as root
	data string
	port int
	log  string
}

// pgCommand runs a PostgreSQL tool, as the postgres user when the test runs as root
// (PostgreSQL refuses to run as root).
func pgCommand(tool string, args ...string) *exec.Cmd {
	bin := filepath.Join(pgBin, tool)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

// startPrivatePostgres initdbs and starts a server on a free loopback port; cleanup
// stops it (immediate mode) and removes its folder.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		t.Fatalf("PostgreSQL 15 binaries are required in %s for this test (CI installs them): %v", pgBin, err)
	}
	dir, err := os.MkdirTemp("", "portico-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			t.Fatalf("chown postgres %s: %v\n%s", dir, err, out)
		}
	}
	pg := &privatePostgres{dir: dir, data: filepath.Join(dir, "data"), port: freePort(t), log: filepath.Join(dir, "postgres.log")}
	t.Cleanup(func() {
		pg.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(pg.log)
			t.Logf("---- private PostgreSQL log ----\n%s", b)
		}
		os.RemoveAll(dir)
	})
	if out, err := pgCommand("initdb", "-D", pg.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.start(t)
	return pg
}

// dsn is the store DSN for `portico control --store`.
func (pg *privatePostgres) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

func (pg *privatePostgres) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", pg.port, pg.dir)
	if out, err := pgCommand("pg_ctl", "-D", pg.data, "-l", pg.log, "-o", opts, "-w", "-t", "30", "start").CombinedOutput(); err != nil {
		b, _ := os.ReadFile(pg.log)
		t.Fatalf("pg_ctl start: %v\n%s\nlog:\n%s", err, out, b)
	}
}

// stop stops the server at once (like a crash: no checkpoint, recovery from WAL on start).
func (pg *privatePostgres) stop(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pg.data, "postmaster.pid")); err != nil {
		return // not running
	}
	if out, err := pgCommand("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "-t", "30", "stop").CombinedOutput(); err != nil {
		t.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
}

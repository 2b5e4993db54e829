package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// portico builds the binary once per test run.
func portico(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portico-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "portico")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/portico").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a running portico with its captured stderr.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	ops    string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startPortico(t *testing.T, args ...string) *process {
	t.Helper()
	ops := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(portico(t), append(args, "--ops-addr", ops)...)
	p := &process{cmd: cmd, stderr: &syncBuffer{}, ops: ops}
	cmd.Stderr = p.stderr
	cmd.Stdout = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("portico output:\n%s", p.stderr.String())
		}
	})
	waitHTTP(t, "http://"+ops+"/readyz", 200)
	return p
}

type reloadState struct {
	ActiveVersion string `json:"activeVersion"`
	Applied       int    `json:"applied"`
	Rejected      int    `json:"rejected"`
	LastError     string `json:"lastError"`
}

func (p *process) reload(t *testing.T) reloadState {
	t.Helper()
	resp, err := http.Get("http://" + p.ops + "/debug/reload")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s reloadState
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (p *process) waitReload(t *testing.T, cond func(reloadState) bool) reloadState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := p.reload(t)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload state never reached the expected value: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func basicConfig(port int, backend, path string) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, port: %d, protocol: HTTP, address: 127.0.0.1}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: echo}
spec:
  endpoints: [{address: %q}]
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: echo}
spec:
  matches: [{path: {type: PathPrefix, value: %s}}]
  backends: [{upstream: echo}]
`, port, backend, path)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBadFileKeepsLastGoodConfig edits the watched folder with broken files and checks
// each is refused with a message naming the file, document, object and field, while the
// last good configuration keeps serving; a fixed file is then picked up.
func TestBadFileKeepsLastGoodConfig(t *testing.T) {
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portico.yaml")
	write := func(s string) {
		t.Helper()
		tmp := cfg + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg); err != nil { // atomic, like editors and config managers
			t.Fatal(err)
		}
	}
	write(basicConfig(port, backend, "/one"))
	p := startPortico(t, "proxy", "--config", dir, "--access-log", "off", "--reload-debounce", "50ms")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if code, _ := get(t, base+"/one"); code != 200 {
		t.Fatalf("initial config: %d", code)
	}
	good := p.reload(t)

	busy := listen(t, "127.0.0.1:0")
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name, body string
		want       []string
	}{
		{"malformed YAML", "kind: Route\nmetadata: {name: x\n", []string{"portico.yaml", "document 1"}},
		{"unknown field", strings.Replace(basicConfig(port, backend, "/two"), "backends:", "backendz:", 1), []string{"portico.yaml", "document 3", "Route/echo", "backendz"}},
		{"bad regex", strings.Replace(basicConfig(port, backend, "/(x"), "PathPrefix", "RegularExpression", 1), []string{"portico.yaml", "document 3", "Route/echo", "spec.matches[0].path"}},
		{"unknown upstream", strings.Replace(basicConfig(port, backend, "/two"), "{upstream: echo}", "{upstream: nope}", 1), []string{"portico.yaml", "Route/echo", "nope"}},
		{"port in use", basicConfig(busyPort, backend, "/two"), []string{"default/http", fmt.Sprint(busyPort)}},
		{"duplicate name", basicConfig(port, backend, "/two") + "---\napiVersion: portico.dev/v1alpha1\nkind: Upstream\nmetadata: {name: echo}\nspec:\n  endpoints: [{address: \"127.0.0.1:1\"}]\n", []string{"portico.yaml", "document 4", "Upstream/echo", "duplicate"}},
		{"unknown certificate", basicConfig(port, backend, "/two") + "---\napiVersion: portico.dev/v1alpha1\nkind: Gateway\nmetadata: {name: tls}\nspec:\n  listeners: [{name: https, port: 9, protocol: HTTPS, tls: {certificateRefs: [missing]}}]\n", []string{"portico.yaml", "Gateway/tls", "missing"}},
		{"JSON with a bad field type", `{"apiVersion": "portico.dev/v1alpha1", "kind": "Upstream", "metadata": {"name": "j"}, "spec": {"endpoints": "nope"}}`, []string{"portico.yaml", "Upstream/j", "spec.endpoints"}},
	}
	rejected := good.Rejected
	for _, c := range cases {
		write(c.body)
		s := p.waitReload(t, func(s reloadState) bool { return s.Rejected > rejected })
		rejected = s.Rejected
		for _, w := range c.want {
			if !strings.Contains(s.LastError, w) {
				t.Errorf("%s: error does not name %q:\n%s", c.name, w, s.LastError)
			}
		}
		if s.ActiveVersion != good.ActiveVersion {
			t.Errorf("%s: active version changed to %s", c.name, s.ActiveVersion)
		}
		if code, _ := get(t, base+"/one"); code != 200 {
			t.Errorf("%s: last good config stopped serving: %d", c.name, code)
		}
	}

	write(basicConfig(port, backend, "/two"))
	p.waitReload(t, func(s reloadState) bool { return s.ActiveVersion != good.ActiveVersion })
	if code, _ := get(t, base+"/two"); code != 200 {
		t.Fatalf("fixed config not served: %d", code)
	}
	if code, body := get(t, base+"/one"); code != 404 || !strings.Contains(body, "route_not_found") {
		t.Fatalf("old route still served: %d %s", code, body)
	}
	if p.cmd.ProcessState != nil {
		t.Fatal("process exited")
	}
}

// TestSIGTERMDrainsInFlight sends SIGTERM while a slow request is in flight: the process
// stops accepting, lets the request finish, and exits cleanly.
func TestSIGTERMDrainsInFlight(t *testing.T) {
	slowAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ln := listen(t, slowAddr)
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		w.Write([]byte("finished"))
	})}
	go slow.Serve(ln)
	defer slow.Close()

	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	os.WriteFile(cfg, []byte(basicConfig(port, slowAddr, "/")), 0o644)
	p := startPortico(t, "proxy", "--config", cfg, "--access-log", "off", "--drain-timeout", "10s")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(b), err}
	}()
	time.Sleep(200 * time.Millisecond) // the request is now at the backend
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused soon after the signal.
	refused := false
	for i := 0; i < 50 && !refused; i++ {
		time.Sleep(10 * time.Millisecond)
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err != nil {
			refused = true
		} else {
			c.Close()
		}
	}
	if !refused {
		t.Error("listener still accepting after SIGTERM")
	}
	r := <-done
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Fatalf("in-flight request during drain: %d %q %v", r.code, r.body, r.err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after drain: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("drain took %v", took)
	}
}

// TestBinaryServesPlugins checks the binary links the built-in plugins: a route with
// key-auth answers 401 without a key and 200 with the consumer's key.
func TestBinaryServesPlugins(t *testing.T) {
	backend := startEcho(t, 1)[0]
	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	doc := basicConfig(port, backend, "/") + `  plugins: [{name: key-auth}]
---
apiVersion: portico.dev/v1alpha1
kind: Consumer
metadata: {name: alice}
spec:
  credentials: [{type: key-auth, key: alice-secret-key}]
`
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	startPortico(t, "proxy", "--config", cfg, "--access-log", "off")
	url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
	if code, body := get(t, url); code != 401 || !strings.Contains(body, "unauthorized") {
		t.Fatalf("no key: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("apikey", "alice-secret-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with key: %d", resp.StatusCode)
	}
}

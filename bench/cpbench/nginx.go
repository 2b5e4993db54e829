package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// nginx is the peer: one nginx (master + 1 worker) with the same routes as location
// blocks, reloaded with SIGHUP after each write of its config file.
type nginx struct {
	b    *bench
	dir  string
	conf string
	port int
	proc *proc
	poll *poller
}

// nginxConf renders n routes the way Portico's are: route i is `location /r/i` in the
// server block of host h<i%hosts>.bench.local; probe k (k ≥ 0) is `location = /probe-k`
// in the default server.
func (b *bench) nginxConf(dir string, port, n, probe int) []byte {
	var w bytes.Buffer
	if os.Geteuid() == 0 {
		group := "nogroup"
		if u, err := user.Lookup("nobody"); err == nil {
			if g, err := user.LookupGroupId(u.Gid); err == nil {
				group = g.Name
			}
		}
		fmt.Fprintf(&w, "user nobody %s;\n", group)
	}
	fmt.Fprintf(&w, "daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n", dir, dir)
	w.WriteString("events { worker_connections 4096; }\nhttp {\n  access_log off;\n")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&w, "  %s_temp_path %s/%s;\n", t, dir, t)
	}
	fmt.Fprintf(&w, "  proxy_http_version 1.1;\n  proxy_set_header Connection \"\";\n")
	fmt.Fprintf(&w, "  upstream echo { server 127.0.0.1:%d; keepalive 16; }\n", b.echoPort)
	fmt.Fprintf(&w, "  server {\n    listen 127.0.0.1:%d default_server;\n    server_name _;\n", port)
	if probe >= 0 {
		fmt.Fprintf(&w, "    location = /probe-%d { proxy_pass http://echo; }\n", probe)
	}
	w.WriteString("  }\n")
	hosts := min(b.hosts, n)
	for h := range hosts {
		fmt.Fprintf(&w, "  server {\n    listen 127.0.0.1:%d;\n    server_name h%d.bench.local;\n", port, h)
		for i := h; i < n; i += hosts {
			fmt.Fprintf(&w, "    location /r/%d { proxy_pass http://echo; }\n", i)
		}
		w.WriteString("  }\n")
	}
	w.WriteString("}\n")
	return w.Bytes()
}

// writeAtomic replaces path with data through a rename, as a config tool would.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// startNginx starts nginx with n routes and waits until it serves the last one.
func (b *bench) startNginx(ctx context.Context, name string, n int) (*nginx, error) {
	x := &nginx{b: b, dir: filepath.Join(b.tmp, name)}
	x.conf = filepath.Join(x.dir, "nginx.conf")
	if err := os.MkdirAll(x.dir, 0o755); err != nil {
		return nil, err
	}
	port, err := b.ports.next("127.0.0.1")
	if err != nil {
		return nil, err
	}
	x.port = port
	if err := writeAtomic(x.conf, b.nginxConf(x.dir, port, n, -1)); err != nil {
		return nil, err
	}
	if x.proc, err = b.procs.start(name, filepath.Join(x.dir, "nginx.log"), nil, b.nginxBin,
		"-p", x.dir, "-c", x.conf, "-e", filepath.Join(x.dir, "error.log")); err != nil {
		return nil, err
	}
	x.poll = newPoller(fmt.Sprintf("http://127.0.0.1:%d", port), false)
	last := max(n-1, 0)
	if err := waitFor(ctx, 2*time.Minute, x.proc, func() bool {
		return x.poll.ok(fmt.Sprintf("/r/%d", last), fmt.Sprintf("h%d.bench.local", last%min(b.hosts, max(n, 1))))
	}); err != nil {
		return nil, fmt.Errorf("nginx with %d locations: %w (error log:\n%s)", n, err, tail(filepath.Join(x.dir, "error.log"), 5))
	}
	return x, nil
}

// write is one measured write: the config with n routes and probe k written, SIGHUP to
// the master (what `nginx -s reload` sends), then GET /probe-k until the backend answers.
func (x *nginx) write(ctx context.Context, n, k int) (sample, error) {
	start := time.Now()
	if err := writeAtomic(x.conf, x.b.nginxConf(x.dir, x.port, n, k)); err != nil {
		return sample{}, err
	}
	if err := syscall.Kill(x.proc.pid(), syscall.SIGHUP); err != nil {
		return sample{}, err
	}
	put := time.Since(start)
	first, last, err := pollAll(ctx, []*poller{x.poll}, start, "/probe-"+strconv.Itoa(k), "probe.bench", x.b.timeout, x.proc.exited)
	return sample{start: start, total: last, first: first, put: put}, err
}

// memory is RSS and PSS (KiB) of master + workers after the settle pause.
func (x *nginx) memory(ctx context.Context) (rss, pss int64, err error) {
	select {
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(x.b.settle):
	}
	rss, pss = treeKiB(x.proc.pid())
	return rss, pss, x.proc.exited()
}

func (x *nginx) stop() { x.b.procs.stopSome(x.proc) }

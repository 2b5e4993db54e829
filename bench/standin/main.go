// Command standin is a stand-in for `portico proxy` used to validate the
// bench/proxy.sh harness before the real binary exists. It is a tuned
// net/http/httputil.ReverseProxy and understands only the small config the
// harness generates: the first listener `port:` and the first endpoint
// `address: "host:port"`. Stdlib only, so it adds nothing to go.mod.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"sync"
	"time"
)

var (
	portRE     = regexp.MustCompile(`\bport:\s*(\d+)`)
	listenIPRE = regexp.MustCompile(`\baddress:\s*"?([0-9.]+)"?\s*[,}]`)
	endpointRE = regexp.MustCompile(`\baddress:\s*"?([0-9.]+:\d+)"?`)
)

// bufPool lets the ReverseProxy reuse its 32 KiB copy buffers.
type bufPool struct{ p sync.Pool }

func (b *bufPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufPool) Put(v []byte) { b.p.Put(&v) }

func main() {
	if len(os.Args) < 2 || os.Args[1] != "proxy" {
		log.Fatal("usage: standin proxy --config FILE [--ops-addr ADDR] [--access-log off]")
	}
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	cfgPath := fs.String("config", "", "generated bench config (YAML)")
	opsAddr := fs.String("ops-addr", "127.0.0.1:9901", "ops endpoint address")
	fs.String("access-log", "off", "accepted for CLI compatibility; the stand-in never logs requests")
	_ = fs.Parse(os.Args[2:])

	raw, err := os.ReadFile(*cfgPath)
	if err != nil {
		log.Fatal(err)
	}
	listen, backend, err := parseConfig(string(raw))
	if err != nil {
		log.Fatal(err)
	}

	target := &url.URL{Scheme: "http", Host: backend}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host },
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		BufferPool: &bufPool{p: sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}},
		ErrorLog:   log.New(io.Discard, "", 0),
	}

	go serveOps(*opsAddr)
	log.Printf("standin: %s -> %s", listen, backend)
	log.Fatal((&http.Server{Addr: listen, Handler: rp, ErrorLog: log.New(io.Discard, "", 0)}).ListenAndServe())
}

// parseConfig pulls the listener address and the backend endpoint out of the
// harness-generated YAML (flow style, one value per key).
func parseConfig(s string) (listen, backend string, err error) {
	p := portRE.FindStringSubmatch(s)
	e := endpointRE.FindStringSubmatch(s)
	if p == nil || e == nil {
		return "", "", fmt.Errorf("config: need a listener port and an endpoint address")
	}
	ip := "127.0.0.1"
	if m := listenIPRE.FindStringSubmatch(s); m != nil {
		ip = m[1]
	}
	return net.JoinHostPort(ip, p[1]), e[1], nil
}

// serveOps answers /healthz and /readyz so the ops address is live like the real binary's.
func serveOps(addr string) {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Printf("ops: %v", err)
	}
}

// Package echo is the bundled demo backend: it answers every request with a JSON
// description of what it received, so a user (or a test) can see what the gateway
// forwarded — path after rewrites, headers after filters, forwarding headers.
package echo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Reply is the JSON body the echo server answers with.
type Reply struct {
	Server  string              `json:"server"`
	Method  string              `json:"method"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Query   string              `json:"query,omitempty"`
	Proto   string              `json:"proto"`
	Headers map[string][]string `json:"headers"`
	Body    int64               `json:"bodyBytes"`
}

// Handler answers with a Reply naming server. GET /status/NNN answers with status NNN.
func Handler(server string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		status := http.StatusOK
		if code, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			if c, err := parseStatus(code); err == nil {
				status = c
			}
		}
		headers := map[string][]string{}
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			headers[k] = r.Header[k]
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Server", server)
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(Reply{
			Server: server, Method: r.Method, Host: r.Host, Path: r.URL.Path,
			Query: r.URL.RawQuery, Proto: r.Proto, Headers: headers, Body: n,
		})
	})
}

func parseStatus(s string) (int, error) {
	if len(s) != 3 {
		return 0, errors.New("status must have three digits")
	}
	c := 0
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			return 0, errors.New("status must be digits")
		}
		c = c*10 + int(ch-'0')
	}
	if c < 200 || c > 599 {
		return 0, errors.New("status out of range")
	}
	return c, nil
}

// Servers is a running set of echo servers.
type Servers struct {
	servers []*http.Server
	errc    chan error
}

// Start binds every address (failing fast, with nothing left running, if one is busy)
// and serves in the background.
func Start(addrs []string) (*Servers, error) {
	s := &Servers{errc: make(chan error, len(addrs))}
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.Close()
			return nil, err
		}
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv := &http.Server{Handler: Handler(ln.Addr().String()), Protocols: p, ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		go func() { s.errc <- srv.Serve(ln) }()
	}
	return s, nil
}

// Close stops the servers at once.
func (s *Servers) Close() {
	for _, srv := range s.servers {
		srv.Close()
	}
}

// Shutdown stops the servers, letting requests in flight finish until ctx ends.
func (s *Servers) Shutdown(ctx context.Context) {
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
}

// Serve runs echo servers on addrs until ctx ends or one fails.
func Serve(ctx context.Context, addrs []string) error {
	s, err := Start(addrs)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-s.errc:
		if !errors.Is(err, http.ErrServerClosed) {
			s.Close()
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(shutdown)
	return nil
}

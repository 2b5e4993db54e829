// Package test holds Portico's integration and end-to-end suites: real listeners,
// real backends on 127.0.0.1, the real binary.
package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"portico.dev/portico/internal/echo"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/pipeline"
	"portico.dev/portico/internal/resource"
)

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEcho starts n echo backends and returns their addresses.
func startEcho(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	s, err := echo.Start(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return addrs
}

// snapshotFromYAML parses and translates a config the way the file source does.
func snapshotFromYAML(t testing.TB, doc string) *ir.Snapshot {
	t.Helper()
	res, err := resource.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, doc)
	}
	snap, err := pipeline.New(true, nil, pipeline.Hooks{}).TranslateOnce(res)
	if err != nil {
		t.Fatalf("translate: %v\n%s", err, doc)
	}
	return snap
}

// waitHTTP polls url until it answers with want, or fails the test.
func waitHTTP(t testing.TB, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d in time (last error %v)", url, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

package observe

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendJSONString(t *testing.T) {
	cases := []string{
		"", "plain", `quote " and \ backslash`, "ctl\x00\x01\x1f\n\r\t", "utf8 é 日本",
		"bad \xff\xfe utf8", "sep \u2028 \u2029", "</script>",
	}
	for _, s := range cases {
		b := AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, b, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if s == "bad \xff\xfe utf8" {
			want = "bad \ufffd\ufffd utf8"
		}
		if got != want {
			t.Errorf("%q: round trip %q", s, got)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAccessLogFields(t *testing.T) {
	var buf syncBuf
	l := NewAccessLog(&buf)
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	l.Log(&AccessEntry{
		Time: now, RequestID: "rid", Gateway: "default/http", Route: "ns/r", Method: "GET",
		Host: "a.example", Path: "/p\"q", Status: 200, Upstream: "127.0.0.1:1",
		Duration: 1500 * time.Microsecond, UpstreamDuration: 2 * time.Millisecond,
		BytesIn: 3, BytesOut: 4, RemoteAddr: "127.0.0.1:5", UserAgent: "ua\n",
	})
	// The background flusher must write within ~200ms without Close.
	deadline := time.Now().Add(2 * time.Second)
	for buf.String() == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	line := buf.String()
	if !strings.HasSuffix(line, "}\n") {
		t.Fatalf("line not flushed or not terminated: %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	want := map[string]any{
		"time": "2026-01-02T03:04:05.123456789Z", "request_id": "rid", "gateway": "default/http",
		"route": "ns/r", "method": "GET", "host": "a.example", "path": "/p\"q", "status": 200.0,
		"upstream": "127.0.0.1:1", "duration_ms": 1.5, "upstream_duration_ms": 2.0,
		"bytes_in": 3.0, "bytes_out": 4.0, "remote_addr": "127.0.0.1:5", "user_agent": "ua\n",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Log(&AccessEntry{}) // after Close: dropped, no panic
	if NewAccessLog(nil) != nil {
		t.Fatal("nil writer must turn logging off")
	}
	var off *AccessLog
	off.Log(&AccessEntry{})
	_ = off.Close()
}

func TestAccessLogCloseFlushes(t *testing.T) {
	var buf syncBuf
	l := NewAccessLog(&buf)
	for i := 0; i < 3; i++ {
		l.Log(&AccessEntry{Status: 204})
	}
	_ = l.Close()
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Fatalf("got %d lines after Close", n)
	}
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	r := m.Route("default/http", "ns/a")
	r.Observe(200, time.Millisecond, time.Millisecond)
	r.Observe(201, time.Millisecond, 0)
	r.Observe(503, time.Millisecond, 0)
	r.Observe(499, time.Millisecond, 0)
	if v := Value(m.Registry, "portico_http_requests_total", "route", "ns/a", "status", "2xx"); v != 2 {
		t.Fatalf("2xx = %v", v)
	}
	if v := Value(m.Registry, "portico_http_requests_total", "route", "ns/a", "status", "5xx"); v != 1 {
		t.Fatalf("5xx = %v", v)
	}
	if v := Value(m.Registry, "portico_http_requests_total", "route", "ns/a", "status", "4xx"); v != 1 {
		t.Fatalf("4xx = %v", v)
	}
	if n := Count(m.Registry, "portico_http_upstream_duration_seconds"); n != 1 {
		t.Fatalf("upstream histograms = %d", n)
	}
	m.ReloadSucceeded("v1")
	m.ReloadSucceeded("v2")
	m.ReloadFailed()
	if v := Value(m.Registry, "portico_config_reloads_total"); v != 2 {
		t.Fatalf("reloads = %v", v)
	}
	if v := Value(m.Registry, "portico_config_reload_errors_total"); v != 1 {
		t.Fatalf("reload errors = %v", v)
	}
	if n := Count(m.Registry, "portico_config_info"); n != 1 {
		t.Fatalf("config info series = %d, want only the current version", n)
	}
	m.ConnOpened()
	m.ConnOpened()
	m.ConnClosed()
	if v := Value(m.Registry, "portico_downstream_connections_active"); v != 1 {
		t.Fatalf("active = %v", v)
	}
	m.Forget("default/http", "ns/a")
	if n := Count(m.Registry, "portico_http_requests_total"); n != 0 {
		t.Fatalf("requests after Forget = %d", n)
	}
	if _, err := m.Registry.Gather(); err != nil {
		t.Fatal(err)
	}
	var nilM *Metrics
	nilM.Route("a", "b").Observe(200, 0, 0)
	nilM.ReloadFailed()
}

func BenchmarkRouteObserve(b *testing.B) {
	r := NewMetrics().Route("g", "r")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Observe(200, time.Millisecond, time.Millisecond)
	}
}

func BenchmarkAccessLog(b *testing.B) {
	l := NewAccessLog(discard{})
	defer l.Close()
	e := &AccessEntry{Time: time.Now(), RequestID: "abc", Gateway: "g", Route: "r", Method: "GET",
		Host: "h", Path: "/p", Status: 200, UserAgent: "bench"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Log(e)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

package compression

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"portico.dev/portico/internal/plugin"
	"portico.dev/portico/internal/plugins/internal/gatewaytest"
)

func build(t testing.TB, cfg string) *plugin.Chain {
	t.Helper()
	ch, err := plugin.Build([]plugin.Spec{{Name: Name, Config: json.RawMessage(cfg)}}, &plugin.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func decode(t testing.TB, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch enc {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(b))
	case "zstd":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(b))
		if err == nil {
			defer d.Close()
		}
		r = d
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	default:
		return b
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return out
}

func TestNegotiate(t *testing.T) {
	all := []algo{algoBrotli, algoZstd, algoGzip}
	for ae, want := range map[string]string{
		"gzip, deflate, br, zstd":         "br",
		"gzip;q=1, br;q=0.5":              "gzip",
		"br;q=0, *":                       "zstd",
		"*;q=0.1, gzip;q=0.2":             "gzip",
		"identity":                        "",
		"":                                "",
		"br;q=0, zstd;q=0, gzip;q=0":      "",
		"X-GZIP":                          "gzip",
		"zstd;q=0.8, gzip;q=0.8, br;q=.5": "zstd",
	} {
		a, ok := negotiate([]string{ae}, all)
		got := ""
		if ok {
			got = encodingValue[a][0]
		}
		if got != want {
			t.Errorf("%q: %q, want %q", ae, got, want)
		}
	}
	if a, ok := negotiate([]string{"br, gzip"}, []algo{algoGzip, algoBrotli}); !ok || a != algoGzip {
		t.Error("server preference ignored on ties")
	}
}

// headers runs the response-headers phase for a response with headers h.
func headers(t testing.TB, ch *plugin.Chain, ae string, status int, h http.Header) http.Header {
	t.Helper()
	r, _ := http.NewRequest("GET", "http://api.local/", nil)
	if ae != "" {
		r.Header.Set("Accept-Encoding", ae)
	}
	c := &plugin.Context{Request: r, Status: status, Header: h}
	if err := ch.Run(plugin.PhaseResponseHeaders, c); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestDecisions(t *testing.T) {
	ch := build(t, `{}`)
	h := headers(t, ch, "gzip", 200, http.Header{"Content-Type": {"application/json; charset=utf-8"},
		"Content-Length": {"5000"}, "Etag": {`"abc"`}})
	if h.Get("Content-Encoding") != "gzip" || h.Get("Content-Length") != "" || h.Get("Etag") != `W/"abc"` || h.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("compressed: %v", h)
	}
	for name, tc := range map[string]struct {
		status int
		h      http.Header
	}{
		"small":    {200, http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"100"}}},
		"encoded":  {200, http.Header{"Content-Type": {"text/plain"}, "Content-Encoding": {"gzip"}}},
		"range":    {206, http.Header{"Content-Type": {"text/plain"}, "Content-Range": {"bytes 0-9/99999"}}},
		"type":     {200, http.Header{"Content-Type": {"image/png"}}},
		"untyped":  {200, http.Header{}},
		"no-trans": {200, http.Header{"Content-Type": {"text/plain"}, "Cache-Control": {"no-transform"}}},
		"304":      {304, http.Header{"Content-Type": {"text/plain"}}},
	} {
		h := headers(t, ch, "gzip", tc.status, tc.h)
		if h.Get("Content-Encoding") != "" && name != "encoded" || name == "encoded" && h.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: %v", name, h)
		}
	}
	h = headers(t, ch, "", 200, http.Header{"Content-Type": {"text/html"}, "Vary": {"Origin"}})
	if h.Get("Content-Encoding") != "" || strings.Join(h["Vary"], ",") != "Origin,Accept-Encoding" {
		t.Fatalf("identity: %v", h)
	}
}

func TestConfigValidation(t *testing.T) {
	for cfg, field := range map[string]string{
		`{"algorithms":["deflate"]}`:     "algorithms[0]",
		`{"algorithms":["gzip","gzip"]}`: "algorithms[1]",
		`{"minLength":-1}`:               "minLength",
		`{"types":["json"]}`:             "types[0]",
		`{"level":"max"}`:                "level",
	} {
		_, err := plugin.DecodeConfig(Name, json.RawMessage(cfg))
		if err == nil || !strings.HasPrefix(err.Error(), field+":") {
			t.Errorf("%s: %v", cfg, err)
		}
	}
}

// jsonBody is a ~size-byte JSON document.
func jsonBody(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < size-80; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%d","price":%d.99,"tags":["a","b"]}`, i, i, i%97)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func get(t testing.TB, url, ae string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	resp, err := gatewaytest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestDataPlane(t *testing.T) {
	big, small := jsonBody(20000), []byte(`{"ok":true}`)
	pre, _ := gzipBytes(big)
	base := gatewaytest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Etag", `"v1"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
		case "/small":
			_, _ = w.Write(small)
		case "/pre":
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(pre)
		}
	}), gatewaytest.Spec(Name, `{}`))

	for _, enc := range []string{"br", "zstd", "gzip"} {
		resp, b := get(t, base+"/big", enc)
		if resp.Header.Get("Content-Encoding") != enc || resp.Header.Get("Etag") != `W/"v1"` ||
			resp.Header.Get("Vary") != "Accept-Encoding" || len(b) >= len(big)/2 ||
			(resp.ContentLength != -1 && resp.ContentLength != int64(len(b))) {
			t.Fatalf("%s: %v (%d bytes)", enc, resp.Header, len(b))
		}
		if !bytes.Equal(decode(t, enc, b), big) {
			t.Fatalf("%s: body differs after decoding", enc)
		}
	}
	resp, b := get(t, base+"/big", "identity")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, big) || resp.Header.Get("Content-Length") != strconv.Itoa(len(big)) {
		t.Fatalf("identity: %v", resp.Header)
	}
	resp, b = get(t, base+"/small", "gzip, br")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, small) || resp.Header.Get("Content-Length") != strconv.Itoa(len(small)) {
		t.Fatalf("small: %v %q", resp.Header, b)
	}
	resp, b = get(t, base+"/pre", "br, zstd, gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decode(t, "gzip", b), big) {
		t.Fatalf("pre-encoded: %v", resp.Header)
	}
}

func gzipBytes(b []byte) ([]byte, error) {
	var out bytes.Buffer
	g := gzip.NewWriter(&out)
	_, _ = g.Write(b)
	err := g.Close()
	return out.Bytes(), err
}

func TestStreamingFlush(t *testing.T) {
	release := make(chan struct{})
	base := gatewaytest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: second\n\n")
	}), gatewaytest.Spec(Name, `{"algorithms":["gzip"]}`))
	defer close(release)
	req, _ := http.NewRequest("GET", base+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := gatewaytest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("%v", resp.Header)
	}
	got := make(chan string, 1)
	go func() {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			got <- err.Error()
			return
		}
		line, _ := bufio.NewReader(zr).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: first\n" {
			t.Fatalf("first event: %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("flushed event did not reach the client")
	}
}

func benchWrite(b *testing.B, a algo, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		w := newWriter(a, levelDefault, discardBody{})
		_, _ = w.Write(body)
		_ = w.Close()
	}
}

type discardBody struct{}

func (discardBody) Write(p []byte) (int, error) { return len(p), nil }
func (discardBody) Flush() error                { return nil }
func (discardBody) Close() error                { return nil }

// BenchmarkCompress10KB reports MB/s per algorithm on a 10 KB JSON body.
func BenchmarkCompress10KB(b *testing.B) {
	body := jsonBody(10 << 10)
	for _, a := range []algo{algoBrotli, algoZstd, algoGzip} {
		b.Run(encodingValue[a][0], func(b *testing.B) { benchWrite(b, a, body) })
	}
}

// BenchmarkPluginOverhead is the per-request cost of the plugin's phases when the
// response is not compressed (identity client) and when it is negotiated (gzip).
func BenchmarkPluginOverhead(b *testing.B) {
	ch := build(b, `{}`)
	for _, ae := range []string{"identity", "gzip, deflate, br, zstd"} {
		b.Run(ae, func(b *testing.B) {
			r, _ := http.NewRequest("GET", "http://api.local/", nil)
			r.Header.Set("Accept-Encoding", ae)
			c := &plugin.Context{}
			h := http.Header{}
			b.ReportAllocs()
			for b.Loop() {
				clear(h)
				h["Content-Type"] = []string{"application/json"}
				c.Reset()
				c.Request, c.Status, c.Header = r, 200, h
				_ = ch.Run(plugin.PhaseResponseHeaders, c)
				_ = ch.WrapBody(c, discardBody{}).Close()
			}
		})
	}
}

package proxyproto

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// FuzzRead checks that decoding never panics, never consumes more than the
// header, and that every decoded header survives an encode/decode round trip.
func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 12345 443\r\nGET /"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 5000 443\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(0x21, 0x11, []byte{192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0x01, 0xbb}))
	f.Add(v2(0x20, 0x00, nil))
	f.Add(v2(0x21, 0x21, make([]byte, 40)))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 128)
		h, err := Read(r)
		if err != nil {
			return
		}
		rest, _ := io.ReadAll(r)
		if !bytes.HasSuffix(data, rest) {
			t.Fatalf("left %q, not a suffix of the input", rest)
		}
		enc := h.AppendTo(nil)
		h2, err := Read(bufio.NewReader(bytes.NewReader(enc)))
		if err != nil {
			t.Fatalf("re-decode %q (from %+v): %v", enc, *h, err)
		}
		if h.Known() && *h2 != *h {
			t.Fatalf("round trip %+v -> %+v", *h, *h2)
		}
		if h.Local != h2.Local || h.Version != h2.Version {
			t.Fatalf("round trip %+v -> %+v", *h, *h2)
		}
	})
}

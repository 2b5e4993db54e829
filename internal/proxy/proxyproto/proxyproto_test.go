package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// v2 builds a version 2 header by hand (independently of the encoder).
func v2(verCmd, fam byte, body []byte) []byte {
	b := append([]byte{}, sigV2...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

func TestRead(t *testing.T) {
	ipv4Body := []byte{192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0x01, 0xbb}
	ipv6Body := make([]byte, 36)
	copy(ipv6Body[0:16], net.ParseIP("2001:db8::1"))
	copy(ipv6Body[16:32], net.ParseIP("2001:db8::2"))
	binary.BigEndian.PutUint16(ipv6Body[32:], 5000)
	binary.BigEndian.PutUint16(ipv6Body[34:], 443)
	withTLV := append(append([]byte{}, ipv4Body...), 0x04, 0, 3, 'a', 'b', 'c')

	tests := []struct {
		name    string
		in      string
		want    *Header
		err     error // errors.Is target; nil means success
		anyErr  bool
		trailer string // what must remain unread
	}{
		{name: "v1 tcp4", in: "PROXY TCP4 192.0.2.1 198.51.100.2 12345 443\r\nGET /",
			want: &Header{Version: 1, Source: ap("192.0.2.1:12345"), Destination: ap("198.51.100.2:443")}, trailer: "GET /"},
		{name: "v1 tcp6", in: "PROXY TCP6 2001:db8::1 2001:db8::2 5000 443\r\n",
			want: &Header{Version: 1, Source: ap("[2001:db8::1]:5000"), Destination: ap("[2001:db8::2]:443")}},
		{name: "v1 unknown", in: "PROXY UNKNOWN\r\nx", want: &Header{Version: 1}, trailer: "x"},
		{name: "v1 unknown with junk", in: "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", want: &Header{Version: 1}},
		{name: "v1 max length", in: "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			want: &Header{Version: 1, Source: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Destination: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
		{name: "v1 family mismatch", in: "PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n", err: ErrMalformed},
		{name: "v1 tcp6 with v4", in: "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n", err: ErrMalformed},
		{name: "v1 bad port", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n", err: ErrMalformed},
		{name: "v1 signed port", in: "PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n", err: ErrMalformed},
		{name: "v1 double space", in: "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n", err: ErrMalformed},
		{name: "v1 bare LF", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", err: ErrMalformed},
		{name: "v1 too few fields", in: "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", err: ErrMalformed},
		{name: "v1 unknown protocol", in: "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n", err: ErrMalformed},
		{name: "v1 zone", in: "PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n", err: ErrMalformed},
		{name: "v1 too long", in: "PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n", err: ErrMalformed},
		{name: "v1 truncated", in: "PROXY TCP4 192.0.2.1 19", err: io.ErrUnexpectedEOF},
		{name: "v1 lowercase", in: "proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n", err: ErrNoHeader},
		{name: "http request", in: "GET / HTTP/1.1\r\n\r\n", err: ErrNoHeader},
		{name: "PROXZ", in: "PROXZ TCP4\r\n", err: ErrNoHeader},
		{name: "empty", in: "", err: io.EOF},

		{name: "v2 tcp4", in: string(v2(0x21, 0x11, ipv4Body)) + "rest",
			want: &Header{Version: 2, Source: ap("192.0.2.1:12345"), Destination: ap("198.51.100.2:443")}, trailer: "rest"},
		{name: "v2 udp4", in: string(v2(0x21, 0x12, ipv4Body)),
			want: &Header{Version: 2, UDP: true, Source: ap("192.0.2.1:12345"), Destination: ap("198.51.100.2:443")}},
		{name: "v2 tcp6", in: string(v2(0x21, 0x21, ipv6Body)),
			want: &Header{Version: 2, Source: ap("[2001:db8::1]:5000"), Destination: ap("[2001:db8::2]:443")}},
		{name: "v2 tlvs skipped", in: string(v2(0x21, 0x11, withTLV)) + "z",
			want: &Header{Version: 2, Source: ap("192.0.2.1:12345"), Destination: ap("198.51.100.2:443")}, trailer: "z"},
		{name: "v2 local", in: string(v2(0x20, 0x00, nil)) + "hc", want: &Header{Version: 2, Local: true}, trailer: "hc"},
		{name: "v2 local with addresses", in: string(v2(0x20, 0x11, ipv4Body)), want: &Header{Version: 2, Local: true}},
		{name: "v2 unspec", in: string(v2(0x21, 0x00, nil)), want: &Header{Version: 2}},
		{name: "v2 unix", in: string(v2(0x21, 0x31, make([]byte, 216))), want: &Header{Version: 2}},
		{name: "v2 short ipv4 block", in: string(v2(0x21, 0x11, ipv4Body[:8])), err: ErrMalformed},
		{name: "v2 short ipv6 block", in: string(v2(0x21, 0x21, ipv4Body)), err: ErrMalformed},
		{name: "v2 bad version", in: string(v2(0x11, 0x11, ipv4Body)), err: ErrMalformed},
		{name: "v2 bad command", in: string(v2(0x22, 0x11, ipv4Body)), err: ErrMalformed},
		{name: "v2 bad family", in: string(v2(0x21, 0x41, ipv4Body)), err: ErrMalformed},
		{name: "v2 bad transport", in: string(v2(0x21, 0x13, ipv4Body)), err: ErrMalformed},
		{name: "v2 truncated head", in: string(sigV2[:10]), err: io.ErrUnexpectedEOF},
		{name: "v2 truncated body", in: string(v2(0x21, 0x11, ipv4Body)[:20]), err: io.ErrUnexpectedEOF},
		{name: "v2 bad signature", in: "\r\n\r\n\x00\r\nQUIZ\n\x21\x11\x00\x00", err: ErrNoHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tc.in), 128)
			h, err := Read(r)
			if tc.err != nil || tc.anyErr {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("Read = %+v, %v; want error %v", h, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if *h != *tc.want {
				t.Fatalf("Read = %+v, want %+v", *h, *tc.want)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tc.trailer {
				t.Fatalf("left %q, want %q", rest, tc.trailer)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(ap(s)) }
	tests := []struct {
		name    string
		version int
		src     net.Addr
		dst     net.Addr
		v1      string // expected text for version 1
		want    Header // what decoding yields
	}{
		{name: "v1 ipv4", version: 1, src: tcp("192.0.2.1:1000"), dst: tcp("127.0.0.1:80"),
			v1:   "PROXY TCP4 192.0.2.1 127.0.0.1 1000 80\r\n",
			want: Header{Version: 1, Source: ap("192.0.2.1:1000"), Destination: ap("127.0.0.1:80")}},
		{name: "v1 ipv6", version: 1, src: tcp("[2001:db8::1]:1000"), dst: tcp("[::1]:80"),
			v1:   "PROXY TCP6 2001:db8::1 ::1 1000 80\r\n",
			want: Header{Version: 1, Source: ap("[2001:db8::1]:1000"), Destination: ap("[::1]:80")}},
		{name: "v1 mixed", version: 1, src: tcp("192.0.2.1:1000"), dst: tcp("[::1]:80"),
			v1:   "PROXY TCP6 ::ffff:192.0.2.1 ::1 1000 80\r\n",
			want: Header{Version: 1, Source: ap("[::ffff:192.0.2.1]:1000"), Destination: ap("[::1]:80")}},
		{name: "v1 mapped unmapped", version: 1, src: tcp("[::ffff:192.0.2.1]:1"), dst: tcp("127.0.0.1:2"),
			v1:   "PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n",
			want: Header{Version: 1, Source: ap("192.0.2.1:1"), Destination: ap("127.0.0.1:2")}},
		{name: "v1 unknown", version: 1, src: &net.UnixAddr{Name: "/x"}, dst: tcp("127.0.0.1:2"),
			v1: "PROXY UNKNOWN\r\n", want: Header{Version: 1}},
		{name: "v2 ipv4", version: 2, src: tcp("192.0.2.1:1000"), dst: tcp("127.0.0.1:80"),
			want: Header{Version: 2, Source: ap("192.0.2.1:1000"), Destination: ap("127.0.0.1:80")}},
		{name: "v2 ipv6", version: 2, src: tcp("[2001:db8::1]:1000"), dst: tcp("[::1]:80"),
			want: Header{Version: 2, Source: ap("[2001:db8::1]:1000"), Destination: ap("[::1]:80")}},
		{name: "v2 udp", version: 2, src: net.UDPAddrFromAddrPort(ap("192.0.2.1:53")), dst: net.UDPAddrFromAddrPort(ap("127.0.0.1:53")),
			want: Header{Version: 2, UDP: true, Source: ap("192.0.2.1:53"), Destination: ap("127.0.0.1:53")}},
		{name: "v2 unknown", version: 2, src: nil, dst: nil, want: Header{Version: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := ForConn(tc.version, tc.src, tc.dst)
			b := h.AppendTo(nil)
			if tc.v1 != "" && string(b) != tc.v1 {
				t.Fatalf("encoded %q, want %q", b, tc.v1)
			}
			got, err := Read(bufio.NewReader(bytes.NewReader(b)))
			if err != nil {
				t.Fatalf("decode %q: %v", b, err)
			}
			if *got != tc.want {
				t.Fatalf("decoded %+v, want %+v", *got, tc.want)
			}
		})
	}
	local := Header{Version: 2, Local: true}
	if got, err := Read(bufio.NewReader(bytes.NewReader(local.AppendTo(nil)))); err != nil || *got != local {
		t.Fatalf("LOCAL round trip: %+v, %v", got, err)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]int{"v1": 1, "v2": 2, "1": 1, "2": 2} {
		if got, err := ParseVersion(in); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := ParseVersion("v3"); err == nil {
		t.Error("v3 accepted")
	}
}

// pipeWith returns the server end of a TCP connection on loopback whose client
// end has written data (and is then left open).
func pipeWith(t *testing.T, data string) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	if data != "" {
		if _, err := client.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	return server, client
}

func TestPolicyAccept(t *testing.T) {
	trusted, err := NewPolicy([]string{"127.0.0.0/8", "::1"}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := NewPolicy([]string{"10.0.0.0/8"}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPolicy([]string{"not-a-cidr"}, 0); err == nil {
		t.Fatal("bad CIDR accepted")
	}

	t.Run("trusted header", func(t *testing.T) {
		s, _ := pipeWith(t, "PROXY TCP4 203.0.113.7 10.1.1.1 4242 8080\r\nhello")
		c, err := trusted.Accept(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RemoteAddr().String(); got != "203.0.113.7:4242" {
			t.Fatalf("RemoteAddr = %s", got)
		}
		if got := c.LocalAddr().String(); got != "10.1.1.1:8080" {
			t.Fatalf("LocalAddr = %s", got)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("read %q, %v", buf, err)
		}
	})
	t.Run("trusted local keeps peer address", func(t *testing.T) {
		local := Header{Version: 2, Local: true}
		s, cl := pipeWith(t, string(local.AppendTo(nil)))
		c, err := trusted.Accept(s)
		if err != nil {
			t.Fatal(err)
		}
		if c.RemoteAddr().String() != cl.LocalAddr().String() {
			t.Fatalf("RemoteAddr = %s, want %s", c.RemoteAddr(), cl.LocalAddr())
		}
	})
	t.Run("trusted garbage refused", func(t *testing.T) {
		s, _ := pipeWith(t, "GET / HTTP/1.1\r\n\r\n")
		if _, err := trusted.Accept(s); !errors.Is(err, ErrNoHeader) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("trusted silence times out", func(t *testing.T) {
		s, _ := pipeWith(t, "")
		start := time.Now()
		_, err := trusted.Accept(s)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v, want timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("untrusted header refused", func(t *testing.T) {
		for _, hdr := range []string{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET /", string(v2(0x21, 0x00, nil))} {
			s, _ := pipeWith(t, hdr)
			c, err := untrusted.Accept(s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(make([]byte, 64)); !errors.Is(err, ErrUntrusted) {
				t.Fatalf("Read err = %v, want ErrUntrusted", err)
			}
		}
	})
	t.Run("untrusted plain passes", func(t *testing.T) {
		for _, data := range []string{"PRO", "POST / HTTP/1.1\r\n", "\r\n\r\nabc"} {
			s, cl := pipeWith(t, data)
			cl.(*net.TCPConn).CloseWrite()
			c, err := untrusted.Accept(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil || string(got) != data {
				t.Fatalf("read %q, %v; want %q", got, err, data)
			}
			if c.RemoteAddr().String() != cl.LocalAddr().String() {
				t.Fatalf("RemoteAddr = %s", c.RemoteAddr())
			}
		}
	})
}

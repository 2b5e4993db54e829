// Package proxyproto implements the PROXY protocol, versions 1 (text) and 2
// (binary), which carries a client's original addresses across a proxy. The
// data plane encodes a header at the start of connections it opens to
// upstreams that ask for one, and decodes the header that a trusted load
// balancer in front of it sends (see Policy).
package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// sigV2 opens every version 2 header; sigV1 every version 1 header.
var sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	sigV1 = "PROXY "
	// maxV1 is the longest version 1 line, CRLF included (spec §2.1).
	maxV1 = 107
	// v2HeadLen is the fixed part of a version 2 header.
	v2HeadLen = 16
)

// Errors returned when decoding.
var (
	// ErrNoHeader means the stream does not start with a PROXY signature.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrMalformed means a header started but is not valid.
	ErrMalformed = errors.New("proxyproto: malformed header")
	// ErrUntrusted means a source outside the trusted ranges sent a header.
	ErrUntrusted = errors.New("proxyproto: header from an untrusted source")
)

// Header is a decoded (or to be encoded) PROXY protocol header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local is the version 2 LOCAL command: the connection was made by the proxy
	// itself (a health check) and carries no client addresses.
	Local bool
	// UDP marks a datagram (version 2 only); false is a stream (TCP).
	UDP bool
	// Source and Destination are the original client and server addresses.
	// Both are invalid (zero) when the sender did not know them ("UNKNOWN",
	// AF_UNSPEC, AF_UNIX or LOCAL).
	Source, Destination netip.AddrPort
}

// Known reports whether the header carries usable IP addresses.
func (h *Header) Known() bool { return !h.Local && h.Source.IsValid() && h.Destination.IsValid() }

// ParseVersion maps a configuration value ("v1", "v2", also "1", "2") to a version.
func ParseVersion(s string) (int, error) {
	switch s {
	case "v1", "1":
		return 1, nil
	case "v2", "2":
		return 2, nil
	}
	return 0, fmt.Errorf("proxyproto: unknown version %q (want v1 or v2)", s)
}

// ForConn returns the header a proxy sends upstream for a client connection
// from src to dst: *net.TCPAddr or *net.UDPAddr values carry addresses, others
// (unix sockets, nil) give an UNKNOWN header.
func ForConn(version int, src, dst net.Addr) Header {
	h := Header{Version: version}
	s, sok := addrPort(src)
	d, dok := addrPort(dst)
	if !sok || !dok {
		return h
	}
	_, h.UDP = src.(*net.UDPAddr)
	s = netip.AddrPortFrom(s.Addr().Unmap(), s.Port())
	d = netip.AddrPortFrom(d.Addr().Unmap(), d.Port())
	if s.Addr().Is4() != d.Addr().Is4() {
		// Mixed families: both sides as IPv6 (v4-mapped where needed).
		s = netip.AddrPortFrom(netip.AddrFrom16(s.Addr().As16()), s.Port())
		d = netip.AddrPortFrom(netip.AddrFrom16(d.Addr().As16()), d.Port())
	}
	h.Source, h.Destination = s, d
	return h
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		if a == nil {
			return netip.AddrPort{}, false
		}
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port()), ap.IsValid()
	case *net.UDPAddr:
		if a == nil {
			return netip.AddrPort{}, false
		}
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port()), ap.IsValid()
	}
	return netip.AddrPort{}, false
}

// AppendTo appends the encoded header to b. Version 1 cannot express LOCAL or
// UDP: those are written as "PROXY UNKNOWN".
func (h *Header) AppendTo(b []byte) []byte {
	if h.Version == 1 {
		return h.appendV1(b)
	}
	return h.appendV2(b)
}

func (h *Header) appendV1(b []byte) []byte {
	if !h.Known() || h.UDP {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	fam := "TCP4 "
	if !h.Source.Addr().Is4() {
		fam = "TCP6 "
	}
	b = append(b, sigV1...)
	b = append(b, fam...)
	b = h.Source.Addr().AppendTo(b)
	b = append(b, ' ')
	b = h.Destination.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Source.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Destination.Port()), 10)
	return append(b, '\r', '\n')
}

func (h *Header) appendV2(b []byte) []byte {
	b = append(b, sigV2...)
	if h.Local {
		return append(b, 0x20, 0x00, 0, 0)
	}
	b = append(b, 0x21)
	if !h.Known() {
		return append(b, 0x00, 0, 0)
	}
	proto := byte(0x1)
	if h.UDP {
		proto = 0x2
	}
	s, d := h.Source.Addr(), h.Destination.Addr()
	if s.Is4() && d.Is4() {
		b = append(b, 0x10|proto, 0, 12)
		a4, d4 := s.As4(), d.As4()
		b = append(b, a4[:]...)
		b = append(b, d4[:]...)
	} else {
		b = append(b, 0x20|proto, 0, 36)
		a16, d16 := s.As16(), d.As16()
		b = append(b, a16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, h.Source.Port())
	return binary.BigEndian.AppendUint16(b, h.Destination.Port())
}

// Read decodes one header from r, consuming exactly its bytes: what follows
// stays buffered in r. It returns ErrNoHeader when r does not start with a
// signature and an error wrapping ErrMalformed for a broken header. r must
// buffer at least 107 bytes (the longest version 1 line).
func Read(r *bufio.Reader) (*Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, err
	}
	switch first[0] {
	case sigV1[0]:
		return readV1(r)
	case sigV2[0]:
		return readV2(r)
	}
	return nil, ErrNoHeader
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

func readV1(r *bufio.Reader) (*Header, error) {
	// Peek byte by byte up to the limit so nothing past the header is consumed
	// and a sender that never ends the line cannot make us buffer more.
	var line []byte
	for n := 1; ; n++ {
		b, err := r.Peek(n)
		if len(b) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if n <= len(sigV1) && b[n-1] != sigV1[n-1] {
			return nil, ErrNoHeader
		}
		if b[n-1] == '\n' {
			line = b
			break
		}
		if n == maxV1 {
			return nil, malformed("version 1 line longer than %d bytes", maxV1)
		}
	}
	h, err := parseV1(line)
	if err != nil {
		return nil, err
	}
	_, _ = r.Discard(len(line))
	return h, nil
}

func parseV1(line []byte) (*Header, error) {
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return nil, malformed("version 1 line does not end with CRLF")
	}
	f := bytes.Split(body, []byte{' '})
	h := &Header{Version: 1}
	if len(f) >= 2 && string(f[1]) == "UNKNOWN" {
		return h, nil // the rest of the line is to be ignored (spec §2.1)
	}
	if len(f) != 6 {
		return nil, malformed("version 1 needs 6 fields, got %d", len(f))
	}
	var want4 bool
	switch string(f[1]) {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return nil, malformed("version 1 protocol %q", f[1])
	}
	var addrs [2]netip.Addr
	for i, s := range f[2:4] {
		a, err := netip.ParseAddr(string(s))
		if err != nil || a.Zone() != "" || a.Is4() != want4 {
			return nil, malformed("version 1 %s address %q", f[1], s)
		}
		addrs[i] = a
	}
	var ports [2]uint16
	for i, s := range f[4:6] {
		p, ok := parsePort(s)
		if !ok {
			return nil, malformed("version 1 port %q", s)
		}
		ports[i] = p
	}
	h.Source = netip.AddrPortFrom(addrs[0], ports[0])
	h.Destination = netip.AddrPortFrom(addrs[1], ports[1])
	return h, nil
}

// parsePort accepts 1 to 5 decimal digits up to 65535.
func parsePort(s []byte) (uint16, bool) {
	if len(s) == 0 || len(s) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return uint16(n), n <= 65535
}

func readV2(r *bufio.Reader) (*Header, error) {
	head, err := r.Peek(v2HeadLen)
	for i := range min(len(head), len(sigV2)) {
		if head[i] != sigV2[i] {
			return nil, ErrNoHeader
		}
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	verCmd, fam := head[12], head[13]
	n := int(binary.BigEndian.Uint16(head[14:16]))
	if verCmd>>4 != 2 {
		return nil, malformed("version 2 header with version nibble %d", verCmd>>4)
	}
	cmd, af, proto := verCmd&0xf, fam>>4, fam&0xf
	if cmd > 1 || af > 3 || proto > 2 {
		return nil, malformed("version 2 command %d family %d protocol %d", cmd, af, proto)
	}
	_, _ = r.Discard(v2HeadLen)
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	h := &Header{Version: 2, Local: cmd == 0, UDP: proto == 2}
	if h.Local || proto == 0 {
		return h, nil // LOCAL or unspecified transport: addresses are ignored
	}
	switch af {
	case 1:
		if n < 12 {
			return nil, malformed("version 2 IPv4 block of %d bytes", n)
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	case 2:
		if n < 36 {
			return nil, malformed("version 2 IPv6 block of %d bytes", n)
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	case 3:
		if n < 216 {
			return nil, malformed("version 2 unix block of %d bytes", n)
		}
	}
	return h, nil
}

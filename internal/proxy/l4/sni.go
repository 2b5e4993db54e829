package l4

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
)

// maxHello bounds the ClientHello we are willing to buffer (a hello with large
// post-quantum key shares is a few KiB; the record layer allows 16 KiB each).
const maxHello = 64 << 10

var errNotTLS = errors.New("l4: not a TLS ClientHello")

// peekClientHello reads the ClientHello from c without consuming it for the
// backend: it returns the server name (lower case, "" when the client sent
// none) and a connection that replays the bytes read before continuing.
func peekClientHello(c net.Conn) (string, net.Conn, error) {
	var raw []byte // every byte read, replayed later
	var msg []byte // handshake message bytes gathered across records
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return "", nil, err
		}
		raw = append(raw, hdr...)
		if hdr[0] != 0x16 || hdr[1] != 3 {
			return "", nil, errNotTLS
		}
		n := int(binary.BigEndian.Uint16(hdr[3:5]))
		if n == 0 || n > 16384+2048 || len(raw)+n > maxHello {
			return "", nil, errNotTLS
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(c, raw[start:]); err != nil {
			return "", nil, err
		}
		msg = append(msg, raw[start:]...)
		if len(msg) < 4 {
			continue
		}
		if msg[0] != 1 { // client_hello
			return "", nil, errNotTLS
		}
		need := 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
		if need > maxHello {
			return "", nil, errNotTLS
		}
		if len(msg) >= need {
			name, err := parseSNI(msg[4:need])
			if err != nil {
				return "", nil, err
			}
			return name, &replayConn{Conn: c, buf: raw}, nil
		}
	}
}

// parseSNI returns the host_name of the server_name extension (RFC 6066) in a
// ClientHello body (after the 4-byte handshake header).
func parseSNI(b []byte) (string, error) {
	r := reader(b)
	if !r.skip(2+32) || !r.skipVec(1) || !r.skipVec(2) || !r.skipVec(1) {
		return "", errNotTLS
	}
	if len(r) == 0 {
		return "", nil // no extensions
	}
	exts, ok := r.vec(2)
	if !ok {
		return "", errNotTLS
	}
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		data, ok2 := exts.vec(2)
		if !ok1 || !ok2 {
			return "", errNotTLS
		}
		if typ != 0 {
			continue
		}
		list, ok := data.vec(2)
		if !ok {
			return "", errNotTLS
		}
		for len(list) > 0 {
			kind, ok1 := list.u8()
			name, ok2 := list.vec(2)
			if !ok1 || !ok2 {
				return "", errNotTLS
			}
			if kind == 0 {
				return normalizeHost(string(name)), nil
			}
		}
		return "", nil
	}
	return "", nil
}

// normalizeHost lower-cases a name and drops a trailing dot.
func normalizeHost(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }

// reader is a bounds-checked cursor over TLS wire data.
type reader []byte

func (r *reader) skip(n int) bool {
	if len(*r) < n {
		return false
	}
	*r = (*r)[n:]
	return true
}

func (r *reader) u8() (byte, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return v, true
}

func (r *reader) u16() (uint16, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*r)
	*r = (*r)[2:]
	return v, true
}

// vec reads a vector with a 1- or 2-byte length prefix.
func (r *reader) vec(lenBytes int) (reader, bool) {
	var n int
	if lenBytes == 1 {
		v, ok := r.u8()
		if !ok {
			return nil, false
		}
		n = int(v)
	} else {
		v, ok := r.u16()
		if !ok {
			return nil, false
		}
		n = int(v)
	}
	if len(*r) < n {
		return nil, false
	}
	v := (*r)[:n]
	*r = (*r)[n:]
	return v, true
}

func (r *reader) skipVec(lenBytes int) bool {
	_, ok := r.vec(lenBytes)
	return ok
}

// replayConn returns buf before reading from the connection again.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the underlying connection when it can.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("l4: cannot half-close")
}

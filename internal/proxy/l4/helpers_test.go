package l4

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/proxy/proxyproto"
	"portico.dev/portico/internal/proxy/upstream"
)

// buildUpstreams makes live upstreams (endpoints weight 1, round-robin).
func buildUpstreams(t *testing.T, defs ...ir.Upstream) map[string]*upstream.Upstream {
	t.Helper()
	reg := upstream.NewRegistry(upstream.Options{DialTimeout: time.Second})
	ups, err := reg.Build(defs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return ups
}

func upstreamDef(name string, addrs ...string) ir.Upstream {
	u := ir.Upstream{Name: name, Algorithm: "round-robin"}
	for _, a := range addrs {
		u.Endpoints = append(u.Endpoints, ir.Endpoint{Address: a, Weight: 1})
	}
	return u
}

func streamRoute(name string, sni []string, upstreams ...string) ir.StreamRoute {
	sr := ir.StreamRoute{Name: name, SNI: sni}
	for _, u := range upstreams {
		sr.Backends = append(sr.Backends, ir.Backend{Upstream: u, Weight: 1})
	}
	return sr
}

// startL4 binds an L4 listener on 127.0.0.1 (any port) with the given routes.
func startL4(t *testing.T, proto ir.Protocol, pp *ir.ProxyProtocolAccept, ups map[string]*upstream.Upstream, routes ...ir.StreamRoute) *Listener {
	t.Helper()
	l, err := Listen("test", "127.0.0.1", 0, proto, Options{DialTimeout: time.Second, HelloTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l.Store(compileState(t, proto, pp, ups, routes...))
	l.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
	})
	return l
}

func compileState(t *testing.T, proto ir.Protocol, pp *ir.ProxyProtocolAccept, ups map[string]*upstream.Upstream, routes ...ir.StreamRoute) *State {
	t.Helper()
	st, err := Compile(&ir.Listener{Name: "test", Protocol: proto, ProxyProtocol: pp}, routes, ups)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// tagServer is a TCP backend that writes "tag|" and then echoes what it reads
// until EOF, then half-closes. It reports each PROXY header it is told to expect.
func tagServer(t *testing.T, tag string, expectProxy bool, headers chan<- *proxyproto.Header) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var r io.Reader = c
				if expectProxy {
					br := bufio.NewReader(c)
					h, err := proxyproto.Read(br)
					if err != nil {
						return
					}
					headers <- h
					r = br
				}
				_, _ = io.WriteString(c, tag+"|")
				_, _ = io.Copy(c, r)
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// exchange connects, sends msg, half-closes and returns everything read.
func exchange(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) { // a refused conn may be reset
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// testCA issues server certificates for TLS backends.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "l4 test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsBackend terminates TLS with a certificate for host and answers "host|" + echo.
func tlsBackend(t *testing.T, ca *testCA, host string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.issue(t, host)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, host+"|"+line)
			}()
		}
	}()
	return ln.Addr().String()
}

// udpEcho answers each datagram with "tag|<sender address>|payload".
func udpEcho(t *testing.T, tag string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(tag+"|"+from.String()+"|"+string(buf[:n])), from)
		}
	}()
	return pc.LocalAddr().String()
}

func portOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return strconv.Itoa(a.Port)
	case *net.UDPAddr:
		return strconv.Itoa(a.Port)
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// selfSigned makes a certificate for hosts, named after the first one.
func selfSigned(t testing.TB, name string, hosts ...string) ir.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     hosts,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return ir.Certificate{
		Name:  name,
		Hosts: hosts,
		Cert:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:   string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})),
	}
}

// tlsSnapshot serves routes on an HTTPS listener with two certificates.
func tlsSnapshot(t testing.TB, port int, ups []ir.Upstream, routes ...ir.Route) *ir.Snapshot {
	def := selfSigned(t, "default-cert", "default.example")
	a := selfSigned(t, "a-cert", "a.example")
	w := selfSigned(t, "wild-cert", "*.wild.example")
	l := httpListenerIR(port, anyHost(routes...))
	l.Protocol = ir.HTTPS
	l.Gateways = []string{"default/https"}
	l.Certificates = []string{"default-cert", "a-cert", "wild-cert"}
	s := &ir.Snapshot{Listeners: []ir.Listener{l}, Upstreams: ups, Certificates: []ir.Certificate{def, a, w}}
	s.ComputeVersion()
	return s
}

func servedCert(t *testing.T, port int, sni string) (string, string) {
	t.Helper()
	c, err := tls.Dial("tcp", "127.0.0.1:"+itoa(port), &tls.Config{
		ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"},
	})
	if err != nil {
		t.Fatalf("handshake sni=%q: %v", sni, err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if st.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x", st.Version)
	}
	return st.PeerCertificates[0].Subject.CommonName, st.NegotiatedProtocol
}

func TestHTTPSSNIAndHTTP2(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	port := freePort(t)
	e.apply(t, tlsSnapshot(t, port, []ir.Upstream{upstreamFor("a", addrOf(a))}, prefixRoute("r", "/", "a")))

	for sni, want := range map[string]string{
		"a.example": "a-cert", "A.Example": "a-cert", "x.wild.example": "wild-cert", "y.x.wild.example": "wild-cert",
		"unknown.example": "default-cert", "": "default-cert", "wild.example": "default-cert",
	} {
		if got, proto := servedCert(t, port, sni); got != want || proto != "h2" {
			t.Errorf("SNI %q: cert %q proto %q, want %q h2", sni, got, proto, want)
		}
	}
	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", "127.0.0.1:"+itoa(port), &tls.Config{
		InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10,
	}); err == nil {
		c.Close()
		t.Error("TLS 1.1 handshake succeeded")
	}

	// HTTP/2 over TLS.
	h2 := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "a.example"}, ForceAttemptHTTP2: true,
	}}
	r := get(t, h2, "https://127.0.0.1:"+itoa(port)+"/h2?x=1", "Host", "a.example")
	if r.status != 200 || r.echo.Path != "/h2" || r.echo.Host != "a.example" {
		t.Fatalf("h2: %d %+v", r.status, r.echo)
	}
	if p := http.Header(r.echo.Header).Get("X-Forwarded-Proto"); p != "https" {
		t.Errorf("X-Forwarded-Proto %q", p)
	}
	resp, err := h2.Get("https://127.0.0.1:" + itoa(port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("client spoke %s, want HTTP/2", resp.Proto)
	}
	// HTTP/1.1 over TLS still works.
	h1 := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	resp, err = h1.Get("https://127.0.0.1:" + itoa(port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Errorf("h1 over TLS: %s %d", resp.Proto, resp.StatusCode)
	}
}

// h2cClient speaks HTTP/2 with prior knowledge over plaintext.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
}

func TestH2CPriorKnowledge(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("a", addrOf(a))}, prefixRoute("r", "/", "a")))
	resp, err := h2cClient().Get(base(port) + "/h2c")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.Contains(string(body), `"path":"/h2c"`) {
		t.Fatalf("h2c: %s %d %s", resp.Proto, resp.StatusCode, body)
	}
	// HTTP/1.1 on the same listener.
	if r := get(t, newClient(), base(port)+"/h1"); r.status != 200 || r.echo.Proto != "HTTP/1.1" {
		t.Fatalf("h1: %d %+v", r.status, r.echo)
	}
}

// TestProtocolSwitchSamePort turns a listener from HTTP to HTTPS and back by swap,
// without rebinding its port.
func TestProtocolSwitchSamePort(t *testing.T) {
	e := newEnv(t)
	a := echoBackend(t, "a")
	port := freePort(t)
	ups := []ir.Upstream{upstreamFor("a", addrOf(a))}
	e.apply(t, simpleSnapshot(port, ups, prefixRoute("r", "/", "a")))
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if r := get(t, plain, base(port)+"/"); r.status != 200 {
		t.Fatal(r.status)
	}
	e.apply(t, tlsSnapshot(t, port, ups, prefixRoute("r", "/", "a")))
	tlsc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true,
	}, Timeout: 5 * time.Second}
	if r := get(t, tlsc, "https://127.0.0.1:"+itoa(port)+"/"); r.status != 200 {
		t.Fatal(r.status)
	}
	e.apply(t, simpleSnapshot(port, ups, prefixRoute("r", "/", "a")))
	if r := get(t, plain, base(port)+"/"); r.status != 200 {
		t.Fatal(r.status)
	}
}

func TestBadCertificateRejected(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	s := tlsSnapshot(t, port, nil, prefixRoute("r", "/"))
	s.Certificates[1].Key = "garbage"
	err := e.rt.Apply(s)
	if err == nil || !strings.Contains(err.Error(), `certificate "a-cert"`) {
		t.Fatalf("err = %v", err)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), time.Second); err == nil {
		c.Close()
		t.Fatal("listener bound despite failed Apply")
	}
}

// rawH1 sends one raw request and returns the response (for tests that need
// byte-level control).
func rawH1(t *testing.T, c net.Conn, req string) *http.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

var _ = context.Background

package upstream

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

func TestResponseHeaderTimeout(t *testing.T) {
	slowHead := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-head" {
			time.Sleep(400 * time.Millisecond)
		}
		w.(http.Flusher).Flush() // head now; body later
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "body")
	}
	for _, proto := range []string{ir.UpstreamHTTP, ir.UpstreamH2C} {
		t.Run(proto, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(slowHead))
			if proto == ir.UpstreamH2C {
				srv.Config.Protocols = new(http.Protocols)
				srv.Config.Protocols.SetUnencryptedHTTP2(true)
			}
			srv.Start()
			defer srv.Close()
			def := ir.Upstream{Name: "rh", Protocol: proto, Endpoints: []ir.Endpoint{{Address: srv.Listener.Addr().String(), Weight: 1}}}
			def.Timeouts.ResponseHeaderMillis = 100
			_, u := buildDef(t, testOpts(), def)
			start := time.Now()
			_, _, err := u.RoundTrip(newReq(t, "GET", "/slow-head"))
			if kindOf(err) != Timeout || !errors.Is(err, ErrResponseHeaderTimeout) {
				t.Fatalf("err = %v, want a response header timeout", err)
			}
			if d := time.Since(start); d > 350*time.Millisecond {
				t.Fatalf("took %v", d)
			}
			// A prompt head with a slow body is fine: the timeout covers the head only.
			resp, _, err := u.RoundTrip(newReq(t, "GET", "/"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "body" {
				t.Fatalf("body %q, %v", b, err)
			}
		})
	}
}

// TestConnectTimeout connects to a listener whose accept queue is full, so
// the SYN is never answered.
func TestConnectTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Skip(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Skip(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", itoa(sa.(*syscall.SockaddrInet4).Port))
	var fill []net.Conn // fill the queue (never accepted)
	defer func() {
		for _, c := range fill {
			c.Close()
		}
	}()
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 50*time.Millisecond)
		if err != nil {
			break
		}
		fill = append(fill, c)
	}
	for _, proto := range []string{ir.UpstreamHTTP, ir.UpstreamH2C} {
		def := ir.Upstream{Name: "ct", Protocol: proto, Endpoints: []ir.Endpoint{{Address: addr, Weight: 1}}}
		def.Timeouts.ConnectMillis = 100
		_, u := buildDef(t, testOpts(), def)
		start := time.Now()
		_, _, err := u.RoundTrip(newReq(t, "GET", "/"))
		if kindOf(err) != Timeout || !errors.Is(err, ErrConnectTimeout) {
			t.Fatalf("%s: err = %v, want a connect timeout", proto, err)
		}
		if d := time.Since(start); d < 90*time.Millisecond || d > 600*time.Millisecond {
			t.Fatalf("%s: took %v", proto, d)
		}
	}
}

// mtlsPKI is a CA with a server certificate (127.0.0.1) and a client
// certificate, PEM-encoded.
type mtlsPKI struct {
	caPEM, clientCert, clientKey string
	ca                           *x509.CertPool
	server                       tls.Certificate
}

func newMTLSPKI(t *testing.T) mtlsPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mtls CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ip bool) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	sDER, sKey := issue(2, x509.ExtKeyUsageServerAuth, true)
	cDER, cKey := issue(3, x509.ExtKeyUsageClientAuth, false)
	keyDER, _ := x509.MarshalECPrivateKey(cKey)
	p := mtlsPKI{
		caPEM:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		clientCert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cDER})),
		clientKey:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
		ca:         x509.NewCertPool(),
		server:     tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey},
	}
	p.ca.AddCert(ca)
	return p
}

func TestUpstreamMTLS(t *testing.T) {
	pki := newMTLSPKI(t)
	for _, proto := range []string{ir.UpstreamHTTPS, ir.UpstreamH2} {
		t.Run(proto, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName+" "+r.Proto)
			}))
			srv.EnableHTTP2 = proto == ir.UpstreamH2
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server},
				ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.ca}
			srv.StartTLS()
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			withCert := &ir.UpstreamTLS{CACertificate: pki.caPEM, ClientCertificate: pki.clientCert, ClientKey: pki.clientKey}
			def := ir.Upstream{Name: "m", Protocol: proto, TLS: withCert, Endpoints: []ir.Endpoint{{Address: addr, Weight: 1}}}
			// The health check presents the client certificate too.
			def.HealthCheck = &ir.HealthCheck{Active: &ir.ActiveCheck{Type: ir.CheckHTTP, Path: "/", IntervalMillis: 20, UnhealthyThreshold: 1}}
			_, u := buildDef(t, testOpts(), def)
			resp, _, err := u.RoundTrip(newReq(t, "GET", "/"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "leaf HTTP/1.1"
			if proto == ir.UpstreamH2 {
				want = "leaf HTTP/2.0"
			}
			if string(b) != want {
				t.Fatalf("got %q, want %q", b, want)
			}
			waitFor(t, "a check", func() bool { return !u.Health().Endpoints[0].LastCheck.IsZero() })
			if h := u.Health().Endpoints[0]; !h.Healthy {
				t.Fatalf("health check failed: %s", h.LastCheckError)
			}

			noCert := ir.Upstream{Name: "n", Protocol: proto, TLS: &ir.UpstreamTLS{CACertificate: pki.caPEM},
				Endpoints: []ir.Endpoint{{Address: addr, Weight: 1}}}
			_, u2 := buildDef(t, testOpts(), noCert)
			if resp, _, err := u2.RoundTrip(newReq(t, "GET", "/")); err == nil {
				resp.Body.Close()
				t.Fatal("server requiring a client certificate accepted none")
			}
		})
	}
	bad := ir.Upstream{Name: "b", Protocol: ir.UpstreamHTTPS, TLS: &ir.UpstreamTLS{ClientCertificate: pki.clientCert},
		Endpoints: []ir.Endpoint{{Address: "127.0.0.1:1", Weight: 1}}}
	if _, err := NewRegistry(testOpts()).Build([]ir.Upstream{bad}); err == nil {
		t.Fatal("certificate without key accepted")
	}
}

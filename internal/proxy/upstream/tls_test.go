package upstream

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"portico.dev/portico/internal/ir"
)

// testPKI is a CA and a server certificate for "backend.test" only.
type testPKI struct {
	caPEM string
	cert  tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "backend.test"},
		DNSNames:  []string{"backend.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{
		caPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		cert:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}
}

// startTLS starts an HTTPS server recording the SNI names it sees.
func startTLS(t *testing.T, pki testPKI, h2 bool, h http.Handler) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var snis []string
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.cert},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			snis = append(snis, hello.ServerName)
			mu.Unlock()
			return nil, nil
		},
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), snis...) }
}

func TestHTTPSWithPrivateCAAndSNI(t *testing.T) {
	pki := newTestPKI(t)
	srv, snis := startTLS(t, pki, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %d", r.Host, r.ProtoMajor)
	}))
	addr := srv.Listener.Addr().String()
	_, u := oneUpstream(t, "https", &ir.UpstreamTLS{SNI: "backend.test", CACertificate: pki.caPEM}, testOpts(), addr)
	for i := 0; i < 3; i++ {
		req := newReq(t, "GET", "/")
		req.Host = "public.example"
		if _, body := mustRT(t, u, req); body != "public.example 1" {
			t.Fatalf("body %q", body)
		}
	}
	if got := snis(); len(got) != 1 || got[0] != "backend.test" {
		t.Fatalf("handshakes/SNI = %v, want one with backend.test", got)
	}

	// Without the CA the certificate is rejected: ConnectFailed.
	_, u2 := oneUpstream(t, "https", &ir.UpstreamTLS{SNI: "backend.test"}, testOpts(), addr)
	if _, _, err := u2.RoundTrip(newReq(t, "GET", "/")); kindOf(err) != ConnectFailed {
		t.Fatalf("err = %v, want ConnectFailed", err)
	}
	// Wrong name (SNI defaults to the endpoint host, 127.0.0.1): rejected.
	_, u3 := oneUpstream(t, "https", &ir.UpstreamTLS{CACertificate: pki.caPEM}, testOpts(), addr)
	if _, _, err := u3.RoundTrip(newReq(t, "GET", "/")); kindOf(err) != ConnectFailed {
		t.Fatalf("err = %v, want ConnectFailed", err)
	}
	// InsecureSkipVerify accepts it.
	_, u4 := oneUpstream(t, "https", &ir.UpstreamTLS{InsecureSkipVerify: true}, testOpts(), addr)
	mustRT(t, u4, newReq(t, "GET", "/"))
}

func TestBadCANamesUpstream(t *testing.T) {
	r := NewRegistry(testOpts())
	defer r.Close()
	_, err := r.Build([]ir.Upstream{{Name: "payments", Protocol: "https",
		Endpoints: []ir.Endpoint{{Address: "127.0.0.1:1", Weight: 1}},
		TLS:       &ir.UpstreamTLS{CACertificate: "not a pem"}}})
	if err == nil || !strings.Contains(err.Error(), `"payments"`) {
		t.Fatalf("err = %v", err)
	}
}

// grpcLike echoes a streamed request body line by line and ends with
// trailers, like a bidirectional gRPC call.
var grpcLike = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
	w.Header().Set("Content-Type", "application/grpc")
	w.WriteHeader(200)
	w.(http.Flusher).Flush()
	buf := make([]byte, 64)
	n := 0
	for {
		m, err := r.Body.Read(buf)
		if m > 0 {
			n++
			w.Write([]byte(strings.ToUpper(string(buf[:m]))))
			w.(http.Flusher).Flush()
		}
		if err != nil {
			break
		}
	}
	w.Header().Set("Grpc-Status", "0")
	w.Header().Set("Grpc-Message", fmt.Sprintf("%d messages, proto %d", n, r.ProtoMajor))
})

// streamCall runs a ping-pong exchange over u and checks the trailers.
func streamCall(t *testing.T, u *Upstream) {
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://svc/pkg.Svc/Chat", pr)
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, _, err := u.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("proto %s", resp.Proto)
	}
	for _, msg := range []string{"one", "two", "three"} {
		pw.Write([]byte(msg))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != strings.ToUpper(msg) {
			t.Fatalf("stream echo %q %v", got, err)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("tail %q %v", rest, err)
	}
	if resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("Grpc-Message") != "3 messages, proto 2" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
}

func TestH2CStreamingWithTrailers(t *testing.T) {
	srv := httptest.NewUnstartedServer(grpcLike)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	_, u := oneUpstream(t, "h2c", nil, testOpts(), srv.Listener.Addr().String())
	streamCall(t, u)
	streamCall(t, u)
}

func TestH2OverTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv, snis := startTLS(t, pki, true, grpcLike)
	_, u := oneUpstream(t, "h2", &ir.UpstreamTLS{SNI: "backend.test", CACertificate: pki.caPEM}, testOpts(),
		srv.Listener.Addr().String())
	streamCall(t, u)
	streamCall(t, u)
	if got := snis(); len(got) != 1 || got[0] != "backend.test" {
		t.Fatalf("SNI = %v", got)
	}
}

func TestH2ConnectFailed(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, u := oneUpstream(t, "h2c", nil, testOpts(), addr)
	if _, _, err := u.RoundTrip(newReq(t, "GET", "/")); kindOf(err) != ConnectFailed {
		t.Fatalf("err = %v", err)
	}
}

package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"portico.dev/portico/internal/ir"
)

func TestWebSocketEcho(t *testing.T) {
	e := newEnv(t)
	up := websocket.Upgrader{}
	ws := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, http.Header{"X-Upstream": {"ws"}})
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	})
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("ws", addrOf(ws))}, prefixRoute("ws", "/ws", "ws")))

	c, resp, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:"+itoa(port)+"/ws/chat", http.Header{"X-Request-Id": {"ws-1"}})
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer c.Close()
	if resp.StatusCode != 101 || resp.Header.Get("X-Upstream") != "ws" {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	for _, m := range []string{"one", "two", strings.Repeat("x", 100000)} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo:"+m {
			t.Fatalf("echo mismatch: %d bytes", len(got))
		}
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("close: %v", err)
	}
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), `"request_id":"ws-1"`) })
	if l := findLine(e.logs.String(), "ws-1"); !strings.Contains(l, `"status":101`) {
		t.Fatalf("log: %s", l)
	}
}

// grpcBackend runs a gRPC server with the health service on plaintext HTTP/2.
func grpcBackend(t *testing.T) (string, *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	return ln.Addr().String(), hs
}

func TestGRPCPassThrough(t *testing.T) {
	e := newEnv(t)
	addr, hs := grpcBackend(t)
	ups := []ir.Upstream{{Name: "grpc", Protocol: ir.UpstreamH2C, Endpoints: []ir.Endpoint{{Address: addr, Weight: 1}}}}
	route := prefixRoute("grpc", "/grpc.health.v1.Health", "grpc")
	pPlain, pTLS := freePort(t), freePort(t)
	s := tlsSnapshot(t, pTLS, ups, route)
	s.Listeners = append(s.Listeners, httpListenerIR(pPlain, anyHost(route)))
	s.ComputeVersion()
	e.apply(t, s)

	for name, dial := range map[string]func() (*grpc.ClientConn, error){
		"h2c": func() (*grpc.ClientConn, error) {
			return grpc.NewClient("127.0.0.1:"+itoa(pPlain), grpc.WithTransportCredentials(insecure.NewCredentials()))
		},
		"tls": func() (*grpc.ClientConn, error) {
			return grpc.NewClient("127.0.0.1:"+itoa(pTLS), grpc.WithTransportCredentials(
				credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
		},
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			hc := healthpb.NewHealthClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			// Unary call; the status arrives in trailers.
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
			if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("Check: %v %v", r, err)
			}
			_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
			if status.Code(err) != codes.NotFound {
				t.Fatalf("Check unknown: %v, want NotFound", err)
			}

			// Server streaming: updates are relayed as they happen.
			stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
			if err != nil {
				t.Fatal(err)
			}
			first, err := stream.Recv()
			if err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("Watch first: %v %v", first, err)
			}
			hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
			second, err := stream.Recv()
			if err != nil || second.Status != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("Watch second: %v %v", second, err)
			}
			hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
			if third, err := stream.Recv(); err != nil || third.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("Watch third: %v %v", third, err)
			}
			cancel()
			if _, err := stream.Recv(); status.Code(err) != codes.Canceled && err != io.EOF {
				t.Fatalf("after cancel: %v", err)
			}
		})
	}
}

func TestTrailersAndStreaming(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	be := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/trailers":
			w.Header().Set("Trailer", "X-Checksum")
			w.Write([]byte("body"))
			w.(http.Flusher).Flush()
			w.Header().Set("X-Checksum", "abc")
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Length", "100") // a length must not stop flushing SSE
			w.Write([]byte("data: first\n\n"))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
	})
	port := freePort(t)
	e.apply(t, simpleSnapshot(port, []ir.Upstream{upstreamFor("be", addrOf(be))}, prefixRoute("r", "/", "be")))

	for name, cl := range map[string]*http.Client{"h1": newClient(), "h2c": h2cClient()} {
		resp, err := cl.Get(base(port) + "/trailers")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "body" || resp.Trailer.Get("X-Checksum") != "abc" {
			t.Errorf("%s: body %q trailers %v", name, body, resp.Trailer)
		}
	}

	resp, err := newClient().Get(base(port) + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := resp.Body.Read(buf)
		got <- string(buf[:n])
	}()
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "data: first") {
			t.Fatalf("first event %q", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("SSE event not flushed while the upstream keeps the stream open")
	}
	close(release)
}

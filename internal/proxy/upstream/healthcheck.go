package upstream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"portico.dev/portico/internal/ir"
)

// Active check defaults (zero in the IR means "not set").
const (
	defaultCheckInterval = 5 * time.Second
	defaultCheckTimeout  = time.Second
	defaultHealthyAfter  = 1
	defaultSickAfter     = 3
)

// activeChecker probes every endpoint of one upstream: one goroutine per
// endpoint (started and stopped as DNS changes the set), sleeping interval + a random 0..jitter between probes. Probes
// use their own connections (not the traffic pools), so a full pool or a
// circuit-breaker limit never fails a health check.
type activeChecker struct {
	u        *Upstream
	cfg      ir.ActiveCheck
	interval time.Duration
	timeout  time.Duration
	jitter   time.Duration
	client   *http.Client // http and grpc checks
	scheme   string
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	started bool
	probing map[*Endpoint]context.CancelFunc // endpoints with a running loop
}

func newActiveChecker(u *Upstream, cfg ir.ActiveCheck) *activeChecker {
	a := &activeChecker{u: u, cfg: cfg}
	a.interval = msOr(cfg.IntervalMillis, defaultCheckInterval)
	a.timeout = msOr(cfg.TimeoutMillis, defaultCheckTimeout)
	a.jitter = time.Duration(max(cfg.JitterMillis, 0)) * time.Millisecond
	if a.cfg.HealthyThreshold <= 0 {
		a.cfg.HealthyThreshold = defaultHealthyAfter
	}
	if a.cfg.UnhealthyThreshold <= 0 {
		a.cfg.UnhealthyThreshold = defaultSickAfter
	}
	if cfg.Type != ir.CheckTCP {
		a.client = a.newClient()
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.probing = map[*Endpoint]context.CancelFunc{}
	return a
}

func msOr(ms int64, def time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// newClient builds the checks' HTTP client. HTTP checks speak the
// upstream's protocol; gRPC checks always speak HTTP/2 (h2c on "http"
// and "h2c" upstreams, h2 over TLS on "https" and "h2"), with the same TLS
// settings (CA, SNI, client certificate) as the traffic.
func (a *activeChecker) newClient() *http.Client {
	u := a.u
	tlsOn := u.tlsBase != nil
	a.scheme = "http"
	var p http.Protocols
	h2 := a.cfg.Type == ir.CheckGRPC || u.h2 != nil
	switch {
	case h2 && tlsOn:
		p.SetHTTP2(true)
	case h2:
		p.SetUnencryptedHTTP2(true)
	default:
		p.SetHTTP1(true)
	}
	tr := &http.Transport{
		Protocols:           &p,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2*a.interval + a.jitter,
		DisableCompression:  true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return u.dialer.DialContext(ctx, "tcp", addr)
		},
	}
	if tlsOn {
		a.scheme = "https"
		tr.TLSClientConfig = u.tlsBase.Clone()
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is judged by its own status
		},
	}
}

func (a *activeChecker) start() {
	a.mu.Lock()
	a.started = true
	a.mu.Unlock()
	a.sync()
}

// sync runs one probe loop per current endpoint: it starts loops for
// endpoints that joined and stops those of endpoints that left. Before start
// and after stop it does nothing.
func (a *activeChecker) sync() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started || a.ctx.Err() != nil {
		return
	}
	eps := a.u.Endpoints() // read under mu: the last sync sees the last set
	cur := make(map[*Endpoint]bool, len(eps))
	for _, e := range eps {
		cur[e] = true
		if a.probing[e] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(a.ctx)
		a.probing[e] = cancel
		a.wg.Add(1)
		go a.loop(ctx, e)
	}
	for e, cancel := range a.probing {
		if !cur[e] {
			cancel()
			delete(a.probing, e)
		}
	}
}

// stop cancels the probes without waiting for them (retire must not block);
// wait is for tests.
func (a *activeChecker) stop() {
	a.mu.Lock()
	a.cancel()
	a.mu.Unlock()
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
}

func (a *activeChecker) wait() { a.wg.Wait() }

// nextDelay is the pause before the next probe: interval plus up to jitter.
func (a *activeChecker) nextDelay() time.Duration {
	return a.interval + a.randJitter()
}

func (a *activeChecker) randJitter() time.Duration {
	if a.jitter <= 0 {
		return 0
	}
	return rand.N(a.jitter + 1)
}

// loop probes e until stopped. The first probe runs right away (after up
// to one jitter, so endpoints do not all fire at once).
func (a *activeChecker) loop(ctx context.Context, e *Endpoint) {
	defer a.wg.Done()
	t := time.NewTimer(a.randJitter())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := a.probe(ctx, e)
		if ctx.Err() != nil {
			return // stopped mid-probe: the result means nothing
		}
		a.u.recordCheck(e, err, a.cfg.HealthyThreshold, a.cfg.UnhealthyThreshold)
		t.Reset(a.nextDelay())
	}
}

// probe runs one check against e; nil means healthy.
func (a *activeChecker) probe(ctx context.Context, e *Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	switch a.cfg.Type {
	case ir.CheckTCP:
		c, err := a.u.dialer.DialContext(ctx, "tcp", e.Address)
		if err != nil {
			return err
		}
		return c.Close()
	case ir.CheckGRPC:
		return a.probeGRPC(ctx, e)
	default:
		return a.probeHTTP(ctx, e)
	}
}

func (a *activeChecker) newRequest(ctx context.Context, method, path string, e *Endpoint, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.scheme+"://"+e.Address+path, rd)
	if err != nil {
		return nil, err
	}
	if a.cfg.Host != "" {
		req.Host = a.cfg.Host
	}
	req.Header.Set("User-Agent", "portico-health-check")
	return req, nil
}

func (a *activeChecker) probeHTTP(ctx context.Context, e *Endpoint) error {
	path := a.cfg.Path
	if path == "" {
		path = "/"
	}
	req, err := a.newRequest(ctx, http.MethodGet, path, e, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	io.CopyN(io.Discard, resp.Body, 64<<10) // drain a little so the conn is reused
	resp.Body.Close()
	if !expectedStatus(resp.StatusCode, a.cfg.ExpectedStatuses) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// probeGRPC calls grpc.health.v1.Health/Check, written by hand: the request
// is a 5-byte gRPC frame header plus the protobuf field 1 (service, string),
// the reply's field 1 is the serving status enum (1 = SERVING). This keeps
// the check on the same HTTP/2 client and TLS settings as the HTTP checks,
// without a grpc.ClientConn per endpoint.
func (a *activeChecker) probeGRPC(ctx context.Context, e *Endpoint) error {
	req, err := a.newRequest(ctx, http.MethodPost, "/grpc.health.v1.Health/Check", e, grpcHealthRequest(a.cfg.GRPCService))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("grpc: http status %d", resp.StatusCode)
	}
	msg, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	code := resp.Trailer.Get("Grpc-Status")
	if code == "" {
		code = resp.Header.Get("Grpc-Status") // trailers-only reply
	}
	if code != "0" {
		if code == "" && rerr != nil {
			return rerr
		}
		return fmt.Errorf("grpc: status %s: %s", code, resp.Trailer.Get("Grpc-Message")+resp.Header.Get("Grpc-Message"))
	}
	st, err := parseGRPCHealthResponse(msg)
	if err != nil {
		return err
	}
	if st != 1 {
		return fmt.Errorf("grpc: serving status %s", grpcServingStatus(st))
	}
	return nil
}

// grpcHealthRequest frames a HealthCheckRequest{service}.
func grpcHealthRequest(service string) []byte {
	var pb []byte
	if service != "" {
		pb = append(pb, 0x0a) // field 1, length-delimited
		pb = binary.AppendUvarint(pb, uint64(len(service)))
		pb = append(pb, service...)
	}
	out := make([]byte, 5, 5+len(pb))
	binary.BigEndian.PutUint32(out[1:], uint32(len(pb)))
	return append(out, pb...)
}

// parseGRPCHealthResponse reads the status (field 1) of one framed
// HealthCheckResponse; unknown fields are skipped.
func parseGRPCHealthResponse(b []byte) (uint64, error) {
	if len(b) < 5 {
		return 0, errors.New("grpc: short response")
	}
	if b[0] != 0 {
		return 0, errors.New("grpc: compressed response not supported")
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if uint64(len(b)-5) < uint64(n) {
		return 0, errors.New("grpc: truncated response")
	}
	pb := b[5 : 5+n]
	var status uint64
	for len(pb) > 0 {
		key, k := binary.Uvarint(pb)
		if k <= 0 {
			return 0, errors.New("grpc: bad protobuf")
		}
		pb = pb[k:]
		switch key & 7 {
		case 0: // varint
			v, k := binary.Uvarint(pb)
			if k <= 0 {
				return 0, errors.New("grpc: bad protobuf")
			}
			pb = pb[k:]
			if key>>3 == 1 {
				status = v
			}
		case 1: // fixed64
			if len(pb) < 8 {
				return 0, errors.New("grpc: bad protobuf")
			}
			pb = pb[8:]
		case 2: // length-delimited
			l, k := binary.Uvarint(pb)
			if k <= 0 || uint64(len(pb)-k) < l {
				return 0, errors.New("grpc: bad protobuf")
			}
			pb = pb[k+int(l):]
		case 5: // fixed32
			if len(pb) < 4 {
				return 0, errors.New("grpc: bad protobuf")
			}
			pb = pb[4:]
		default:
			return 0, errors.New("grpc: bad protobuf")
		}
	}
	return status, nil
}

func grpcServingStatus(s uint64) string {
	switch s {
	case 0:
		return "UNKNOWN"
	case 2:
		return "NOT_SERVING"
	case 3:
		return "SERVICE_UNKNOWN"
	}
	return strconv.FormatUint(s, 10)
}

package router

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"portico.dev/portico/internal/ir"
)

// refMatch is the specification written as plainly as possible: pick the virtual host
// by scanning, then scan its routes in order. The indexed table must agree with it.
func refMatch(l *ir.Listener, host string, r *http.Request) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")

	var chosen *ir.VirtualHost
	for i := range l.VirtualHosts {
		if l.VirtualHosts[i].Hostname == host {
			chosen = &l.VirtualHosts[i]
			break
		}
	}
	for i := range l.VirtualHosts {
		vh := &l.VirtualHosts[i]
		suffix, ok := strings.CutPrefix(vh.Hostname, "*")
		if chosen != nil || !ok || suffix == "" {
			continue
		}
		if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
			chosen = vh // listener order is longest suffix first
		}
	}
	for i := range l.VirtualHosts {
		if chosen == nil && l.VirtualHosts[i].Hostname == "*" {
			chosen = &l.VirtualHosts[i]
		}
	}
	if chosen == nil {
		return "", false
	}
	for _, rt := range chosen.Routes {
		if refRoute(&rt, r) {
			return rt.Name, true
		}
	}
	return "", false
}

func refRoute(rt *ir.Route, r *http.Request) bool {
	path := r.URL.Path
	switch rt.Path.Type {
	case ir.MatchExact:
		if path != rt.Path.Value {
			return false
		}
	case ir.MatchPrefix:
		p := strings.TrimSuffix(rt.Path.Value, "/")
		if p != "" && path != p && !strings.HasPrefix(path, p+"/") {
			return false
		}
	case ir.MatchRegex:
		if !refValue(ir.MatchRegex, rt.Path.Value, path) {
			return false
		}
	}
	if rt.Method != "" && rt.Method != r.Method {
		return false
	}
	for _, h := range rt.Headers {
		vals := r.Header.Values(h.Name)
		if len(vals) == 0 || !refValue(h.Type, h.Value, strings.Join(vals, ",")) {
			return false
		}
	}
	q, _ := url.ParseQuery(r.URL.RawQuery)
	for _, m := range rt.QueryParams {
		vals := q[m.Name]
		if len(vals) == 0 || !refValue(m.Type, m.Value, vals[0]) {
			return false
		}
	}
	return true
}

var refRegexCache sync.Map

func refValue(typ, want, got string) bool {
	if typ == ir.MatchRegex {
		re, ok := refRegexCache.Load(want)
		if !ok {
			re, _ = refRegexCache.LoadOrStore(want, regexp.MustCompile("^(?:"+want+")$"))
		}
		return re.(*regexp.Regexp).MatchString(got)
	}
	return got == want
}

var (
	refSegments = []string{"a", "b", "api", "v1", ""}
	refRegexes  = []string{`/a/.*`, `/[ab]/b`, `/api(/.*)?`, `/v1|/a`, `.*/b`, `/a/b/[a-z]+`, `/api/v1/?`, `(?i)/A/.*`}
	refHosts    = []string{"a.com", "x.a.com", "*.x.a.com", "*.a.com", "*"}
	refReqHosts = []string{"a.com", "A.com:80", "x.a.com", "y.x.a.com.", "z.a.com", "b.com", "[::1]:80"}
)

func refPath(rnd *rand.Rand, maxDepth int) string {
	var b strings.Builder
	for range rnd.IntN(maxDepth + 1) {
		b.WriteString("/" + refSegments[rnd.IntN(len(refSegments))])
	}
	if b.Len() == 0 || rnd.IntN(4) == 0 {
		b.WriteString("/")
	}
	return b.String()
}

func refRandomRoute(rnd *rand.Rand, name string) ir.Route {
	r := ir.Route{Name: name}
	switch n := rnd.IntN(10); {
	case n < 4:
		r.Path = exact(refPath(rnd, 3))
	case n < 8:
		r.Path = prefix(refPath(rnd, 3))
	default:
		r.Path = regex(refRegexes[rnd.IntN(len(refRegexes))])
	}
	if rnd.IntN(4) == 0 {
		r.Method = []string{"GET", "POST"}[rnd.IntN(2)]
	}
	if rnd.IntN(4) == 0 {
		hdr("x-v", []string{"1", "2", "1,2"}[rnd.IntN(3)])(&r)
	}
	if rnd.IntN(8) == 0 {
		hdrRe("X-V", `[12]`)(&r)
	}
	if rnd.IntN(5) == 0 {
		qry("q", []string{"1", "a b", ""}[rnd.IntN(3)])(&r)
	}
	if rnd.IntN(8) == 0 {
		qryRe("q", `a.*`)(&r)
	}
	return r
}

func refRandomRequest(rnd *rand.Rand) *http.Request {
	r := req([]string{"GET", "POST", "PUT"}[rnd.IntN(3)], refPath(rnd, 4))
	for range rnd.IntN(3) {
		r.Header.Add("X-V", []string{"1", "2", "3"}[rnd.IntN(3)])
	}
	r.URL.RawQuery = []string{"", "q=1", "q=a+b", "q=a%20b", "q=", "q", "q=2&q=1", "q=%zz&q=1", "x=1;q=1"}[rnd.IntN(9)]
	return r
}

func TestAgainstReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	matched, total := 0, 0
	for cfg := 0; cfg < 300; cfg++ {
		l := listener()
		for _, h := range refHosts {
			if rnd.IntN(3) == 0 {
				continue
			}
			v := vh(h)
			for i := range rnd.IntN(40) {
				v.Routes = append(v.Routes, refRandomRoute(rnd, h+"#"+string(rune('A'+i))))
			}
			l.VirtualHosts = append(l.VirtualHosts, v)
		}
		tab := mustCompile(t, l)
		for range 300 {
			host := refReqHosts[rnd.IntN(len(refReqHosts))]
			r := refRandomRequest(rnd)
			want, wantOK := refMatch(l, host, r)
			id, ok := tab.Match(host, r)
			got := ""
			total++
			if ok {
				matched++
				got = tab.Routes()[id].Name
			}
			if got != want || ok != wantOK {
				t.Fatalf("config %d: host %q %s %s %v: got %q, want %q\nroutes: %+v",
					cfg, host, r.Method, r.URL, r.Header, got, want, l.VirtualHosts)
			}
		}
	}
	// Guard against a generator that only ever produces misses (or only hits).
	if matched < total/10 || matched > total*9/10 {
		t.Errorf("%d of %d requests matched: generator is unbalanced", matched, total)
	}
	t.Logf("%d of %d requests matched", matched, total)
}

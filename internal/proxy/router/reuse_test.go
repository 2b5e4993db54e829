package router

import (
	"net/http"
	"slices"
	"testing"

	"portico.dev/portico/internal/ir"
)

// TestCompileFromReusesUnchangedHosts compiles a listener, then a successor sharing some
// of its virtual hosts' route slices, and checks that exactly those are reused and that
// the reusing table answers every request as a table compiled from scratch does.
func TestCompileFromReusesUnchangedHosts(t *testing.T) {
	a := vh("a.example", rt("a1", exact("/a")), rt("a2", prefix("/a")), rt("a3", regex(`/a/[0-9]+`)))
	b := vh("b.example", rt("b1", prefix("/b/x"), hdr("X-B", "1")), rt("b2", prefix("/")))
	c := vh("*.example", rt("c1", prefix("/c")))
	empty := vh("e.example")
	d := vh("*", rt("d1", prefix("/")))
	prev := mustCompile(t, listener(a, b, c, empty, d))

	// Successor: b changed (a new slice), c moved after d, a new host, a kept as is, and
	// a second host shares a's routes (one compiled form, two offsets).
	b2 := vh("b.example", rt("b1", prefix("/b/y")), rt("b2", prefix("/")))
	n := vh("n.example", rt("n1", exact("/n")))
	aliasA := ir.VirtualHost{Hostname: "alias.example", Routes: a.Routes}
	// A shorter view of d's routes is not d's routes.
	short := ir.VirtualHost{Hostname: "short.example", Routes: d.Routes[:0]}
	next := listener(n, a, b2, empty, d, c, aliasA, short)

	got, err := CompileFrom(next, prev)
	if err != nil {
		t.Fatal(err)
	}
	want := mustCompile(t, next)
	reused := map[string]int{}
	for i, sp := range got.Spans() {
		if sp.Prev >= 0 {
			reused[next.VirtualHosts[i].Hostname] = sp.Prev
		}
	}
	// Virtual hosts of prev: a 0, b 1, c 2, the empty host 3, d 4.
	wantReused := map[string]int{"a.example": 0, "alias.example": 0, "*.example": 2, "*": 4}
	if len(reused) != len(wantReused) {
		t.Fatalf("reused %v, want %v", reused, wantReused)
	}
	for h, p := range wantReused {
		if reused[h] != p {
			t.Errorf("host %s: reused from host %d, want %d (all: %v)", h, reused[h], p, reused)
		}
	}
	names := func(tab *Table) []string {
		var out []string
		for _, r := range tab.Routes() {
			out = append(out, r.Name)
		}
		return out
	}
	if !slices.Equal(names(got), names(want)) {
		t.Fatalf("route IDs %v, want %v", names(got), names(want))
	}
	if !slices.EqualFunc(got.Spans(), want.Spans(), func(x, y HostSpan) bool { return x.First == y.First && x.Len == y.Len }) {
		t.Fatalf("spans %v, want %v", got.Spans(), want.Spans())
	}
	for id := range want.Routes() {
		gp, gok := got.MatchedPrefix(id)
		wp, wok := want.MatchedPrefix(id)
		if gp != wp || gok != wok {
			t.Errorf("MatchedPrefix(%d) = %q %v, want %q %v", id, gp, gok, wp, wok)
		}
	}
	for _, host := range []string{"a.example", "b.example", "x.example", "e.example", "n.example", "alias.example", "short.example", "other"} {
		for _, r := range []*http.Request{get("/a"), get("/a/1"), get("/a/x"), get("/b/x/1", "X-B", "1"), get("/b/y"), get("/c/d"), get("/n"), get("/")} {
			gid, gok := got.Match(host, r)
			wid, wok := want.Match(host, r)
			if gid != wid || gok != wok {
				t.Errorf("%s %s: reusing table says %d %v, fresh one %d %v", host, r.URL, gid, gok, wid, wok)
			}
		}
	}
	// The changed host serves its new routes.
	if name := matchName(t, got, "b.example", get("/b/y/z")); name != "b1" {
		t.Errorf("b.example /b/y/z: %q", name)
	}
	if name := matchName(t, got, "b.example", get("/b/x/z", "X-B", "1")); name != "b2" {
		t.Errorf("b.example /b/x/z: %q", name)
	}
}

// TestCompileFromErrors: a virtual host that does not compile fails the table, naming
// the listener, host and route.
func TestCompileFromErrors(t *testing.T) {
	ok := vh("a.example", rt("a1", exact("/a")))
	prev := mustCompile(t, listener(ok))
	_, err := CompileFrom(listener(ok, vh("b.example", rt("bad", regex("(")))), prev)
	if err == nil || err.Error() != `router: listener ":8080" host "b.example" route "bad" (match 0): path: error parsing regexp: missing closing ): `+"`(`" {
		t.Fatalf("err = %v", err)
	}
}

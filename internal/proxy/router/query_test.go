package router

import (
	"net/url"
	"testing"
)

// FuzzFindQuery checks the allocation-free query scanner against net/url: for any raw
// query and name, the first value url.ParseQuery keeps is the one findQuery finds.
func FuzzFindQuery(f *testing.F) {
	seeds := []struct{ raw, name string }{
		{"a=1&b=2", "a"},
		{"a=1&a=2", "a"},
		{"a", "a"},
		{"a=", "a"},
		{"a%20b=x", "a b"},
		{"a+b=x", "a b"},
		{"a=%zz&a=1", "a"},
		{"a=1;b=2&a=3", "a"},
		{"&&a=1", "a"},
		{"a=%", "a"},
		{"%61=1", "a"},
		{"a=1%2", "a"},
		{"q=hello+w%6Frld%2f", "q"},
		{"=x", ""},
		{"b=1", "a"},
	}
	for _, s := range seeds {
		f.Add(s.raw, s.name)
	}
	f.Fuzz(func(t *testing.T, raw, name string) {
		q, _ := url.ParseQuery(raw)
		want, wantOK := "", len(q[name]) > 0
		if wantOK {
			want = q[name][0]
		}
		val, ok := findQuery(raw, name)
		if ok != wantOK {
			t.Fatalf("findQuery(%q, %q) ok = %v, want %v", raw, name, ok, wantOK)
		}
		if !ok {
			return
		}
		if !unescapedEqual(val, want) {
			t.Fatalf("findQuery(%q, %q) = %q, which does not decode to %q", raw, name, val, want)
		}
		dec, err := url.QueryUnescape(val)
		if err != nil || dec != want {
			t.Fatalf("findQuery(%q, %q) = %q: decodes to %q, %v; want %q", raw, name, val, dec, err, want)
		}
	})
}

func TestUnescapedEqual(t *testing.T) {
	cases := []struct {
		esc, plain string
		want       bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"ab", "abc", false},
		{"a+b", "a b", true},
		{"a%20b", "a b", true},
		{"%2B", "+", true},
		{"%2b", "+", true},
		{"+", "+", false},
		{"%", "%", false},
		{"%2", "%2", false},
		{"%zz", "%zz", false},
		{"%e2%82%ac", "€", true},
	}
	for _, c := range cases {
		if got := unescapedEqual(c.esc, c.plain); got != c.want {
			t.Errorf("unescapedEqual(%q, %q) = %v, want %v", c.esc, c.plain, got, c.want)
		}
	}
}

func TestJoinedEqual(t *testing.T) {
	cases := []struct {
		vals []string
		want string
		ok   bool
	}{
		{[]string{"a", "b"}, "a,b", true},
		{[]string{"a", "b"}, "a,b,", false},
		{[]string{"a", "b"}, "a,", false},
		{[]string{"a", "b"}, "ab", false},
		{[]string{"a", ""}, "a,", true},
		{[]string{"", ""}, ",", true},
		{[]string{"a,b", "c"}, "a,b,c", true},
		{[]string{"a", "b", "c"}, "a,b", false},
	}
	for _, c := range cases {
		if got := joinedEqual(c.vals, c.want); got != c.ok {
			t.Errorf("joinedEqual(%q, %q) = %v, want %v", c.vals, c.want, got, c.ok)
		}
	}
}

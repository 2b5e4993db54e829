package router

import (
	"net/http"
	"net/url"
	"strings"
)

// matchRest checks the conditions other than the path, which the index has already
// established (or matchRegexPath has checked).
func (r *route) matchRest(host string, req *http.Request) bool {
	if r.method != "" && r.method != req.Method {
		return false
	}
	for i := range r.headers {
		if !r.headers[i].matchHeader(host, req.Header) {
			return false
		}
	}
	if len(r.query) > 0 {
		raw := ""
		if req.URL != nil {
			raw = req.URL.RawQuery
		}
		for i := range r.query {
			if !r.query[i].matchQuery(raw) {
				return false
			}
		}
	}
	return true
}

// matchHeader reports whether the header is present and its value matches. A repeated
// header is compared as its values joined with ","; an exact comparison does that
// without building the joined string.
func (m *valueMatch) matchHeader(host string, h http.Header) bool {
	if m.host {
		// net/http moves Host out of r.Header; the raw value is the one Match got.
		return m.matchValue(host)
	}
	vals := h[m.name]
	switch {
	case len(vals) == 0:
		return false
	case len(vals) == 1:
		return m.matchValue(vals[0])
	case m.re != nil:
		return m.re.MatchString(strings.Join(vals, ","))
	default:
		return joinedEqual(vals, m.value)
	}
}

func (m *valueMatch) matchValue(v string) bool {
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.value
}

// joinedEqual reports whether strings.Join(vals, ",") == want, without joining.
func joinedEqual(vals []string, want string) bool {
	for i, v := range vals {
		if i > 0 {
			if want == "" || want[0] != ',' {
				return false
			}
			want = want[1:]
		}
		if !strings.HasPrefix(want, v) {
			return false
		}
		want = want[len(v):]
	}
	return want == ""
}

// matchQuery reports whether the first occurrence of the parameter in the raw query
// is present and its decoded value matches.
func (m *valueMatch) matchQuery(rawQuery string) bool {
	val, ok := findQuery(rawQuery, m.name)
	if !ok {
		return false
	}
	if m.re == nil {
		return unescapedEqual(val, m.value)
	}
	if strings.ContainsAny(val, "%+") {
		// Decoding allocates; only values that carry escapes pay for it.
		dec, err := url.QueryUnescape(val)
		if err != nil {
			return false
		}
		val = dec
	}
	return m.re.MatchString(val)
}

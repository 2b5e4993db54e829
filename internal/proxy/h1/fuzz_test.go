package h1

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// FuzzParseHead checks that the head parser never panics, and that what it
// accepts net/http's own parser accepts too, with the same method, target and
// Host (a disagreement is where smuggling lives).
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
		"GET http://h/p HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.0\r\n\r\n",
		"GET /%41 HTTP/1.1\r\nHost: a\r\nX: a\tb\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, head string) {
		end := headEnd([]byte(head))
		if end < 0 {
			return
		}
		head = head[:end]
		var req http.Request
		c := &conn{br: bufio.NewReader(strings.NewReader(""))}
		if parseHead(head, &req) != nil || c.setBody(&req) != nil || req.Method == http.MethodConnect {
			return
		}
		std, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			// net/http is stricter about a few target forms; accept only
			// those differences.
			if strings.Contains(err.Error(), "malformed HTTP request") || strings.Contains(err.Error(), "invalid URI") {
				return
			}
			t.Fatalf("we accept, net/http rejects (%v): %q", err, head)
		}
		if std.Method != req.Method || std.RequestURI != req.RequestURI || std.Host != req.Host ||
			std.URL.Path != req.URL.Path || std.URL.RawQuery != req.URL.RawQuery {
			t.Fatalf("mismatch for %q:\n std %s %q %q %q\n ours %s %q %q %q", head,
				std.Method, std.URL.Path, std.URL.RawQuery, std.Host, req.Method, req.URL.Path, req.URL.RawQuery, req.Host)
		}
	})
}

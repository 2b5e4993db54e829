package router

import "strings"

// findQuery returns the still-escaped value of the first occurrence of the parameter
// name (compared after decoding) in a raw query string. It follows url.ParseQuery:
// pairs are separated by "&", a pair containing ";" or a bad %-escape is skipped, and
// a pair without "=" has an empty value. It allocates nothing.
func findQuery(raw, name string) (value string, ok bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		key, val, _ := strings.Cut(pair, "=")
		if !unescapedEqual(key, name) || !validEscapes(val) {
			continue
		}
		return val, true
	}
	return "", false
}

// validEscapes reports whether every "%" in s starts a two-digit hex escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// unescapedEqual reports whether the query-decoded form of esc ("+" is a space, "%XX"
// a byte) equals plain, decoding on the fly. A bad escape never compares equal.
func unescapedEqual(esc, plain string) bool {
	j := 0
	for i := 0; i < len(esc); i++ {
		c := esc[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(esc) || !isHex(esc[i+1]) || !isHex(esc[i+2]) {
				return false
			}
			c = unhex(esc[i+1])<<4 | unhex(esc[i+2])
			i += 2
		}
		if j >= len(plain) || plain[j] != c {
			return false
		}
		j++
	}
	return j == len(plain)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

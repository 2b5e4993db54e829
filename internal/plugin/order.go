package plugin

// Order is the one list that fixes the run order of built-in plugins: within each phase,
// plugins run in the order they appear here. Authentication comes before authorisation,
// authorisation before limits, limits before transformations. A custom plugin chooses
// its place with Definition.After (the built-in it runs right after; default: after every
// built-in) and Definition.Priority (higher first among plugins anchored at the same place).
var Order = []string{
	"request-id",
	"redirect",
	"ip-restriction",
	"cors",
	"key-auth",
	"basic-auth",
	"jwt-auth",
	"acl",
	"rate-limit",
	"concurrency-limit",
	"body-size",
	"request-transformer",
	"response-transformer",
	"compression",
	// WebAssembly (proxy-wasm) plugins run last: they are the user's own extensions.
	"wasm",
}

var rankOf = func() map[string]int {
	m := make(map[string]int, len(Order))
	for i, n := range Order {
		m[n] = i
	}
	return m
}()

// Rank is a plugin's position in the run order. Built-ins rank by Order (2i). A custom
// plugin ranks right after the built-in its Definition names in After (2i+1), or after
// every built-in when After is empty or unknown.
func Rank(name string) int {
	if r, ok := rankOf[name]; ok {
		return 2 * r
	}
	if d, ok := Lookup(name); ok && d.After != "" {
		if r, ok := rankOf[d.After]; ok {
			return 2*r + 1
		}
	}
	return 2 * len(Order)
}

// Less orders plugin names by Rank; plugins of equal rank (custom plugins anchored at
// the same place) by higher Priority, then by name.
func Less(a, b string) bool {
	ra, rb := Rank(a), Rank(b)
	if ra != rb {
		return ra < rb
	}
	pa, pb := priority(a), priority(b)
	if pa != pb {
		return pa > pb
	}
	return a < b
}

func priority(name string) int {
	if d, ok := Lookup(name); ok {
		return d.Priority
	}
	return 0
}

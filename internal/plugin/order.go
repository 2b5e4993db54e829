package plugin

// Order is the one list that fixes the run order of built-in plugins: within each phase,
// plugins run in the order they appear here. Authentication comes before authorisation,
// authorisation before limits, limits before transformations. Custom plugins run after
// every built-in of their phase, in name order.
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

// Rank is a plugin's position in the run order: built-ins by Order, custom plugins after.
func Rank(name string) int {
	if r, ok := rankOf[name]; ok {
		return r
	}
	return len(Order)
}

// Less orders plugin names by Rank, then by name.
func Less(a, b string) bool {
	ra, rb := Rank(a), Rank(b)
	if ra != rb {
		return ra < rb
	}
	return a < b
}

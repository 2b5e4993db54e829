// Package router compiles one ir.Listener into an immutable matching table that the
// data plane consults for every request, and answers "which route serves this request?"
// without allocating.
//
// # Host
//
// The Host header is normalised before lookup: the port is dropped ("host:port",
// "[v6]:port"), brackets around an IPv6 literal are removed, letters are folded to
// lower case and one trailing dot is ignored. The virtual host is then chosen as:
//
//  1. an exact hostname (a map lookup);
//  2. a wildcard "*.suffix", which matches one or more labels before the suffix
//     ("*.example.com" matches "a.example.com" and "a.b.example.com" but not
//     "example.com"); the longest matching suffix wins;
//  3. the catch-all "*".
//
// The most specific virtual host wins outright: when its routes do not match the
// request, Match reports no match instead of trying a less specific virtual host.
// This is what Gateway API and Envoy do, and it keeps a host's routing independent of
// what other hosts configure.
//
// # Routes
//
// Inside a virtual host, routes keep the precedence order translation gave them and
// the first route whose conditions all hold wins. Conditions:
//
//   - Path (r.URL.Path, already cleaned by the data plane). Exact compares bytes.
//     PathPrefix matches whole segments: "/api" matches "/api", "/api/" and "/api/x",
//     not "/apix"; a trailing slash in the prefix is ignored ("/api/" behaves as
//     "/api"), and "/" matches every path. RegularExpression is RE2 and must match the
//     whole path.
//   - Method, compared exactly (case-sensitive); empty means any method.
//   - Headers: names are case-insensitive; the value is matched exactly or by a
//     whole-value RE2 expression. A repeated header is matched as its values joined
//     with "," (RFC 9110 field combination, as Envoy does). A "Host" header match
//     compares the raw host passed to Match. Every header match must hold.
//   - Query parameters: names are case-sensitive and compared after %-decoding; the
//     first occurrence of a parameter is matched (Gateway API guidance), exactly or
//     by a whole-value RE2 expression, after %-decoding. Pairs that net/url would
//     reject (bad escapes, a ';' in the pair) are ignored, as url.ParseQuery does.
//     Every query match must hold.
//
// # Index
//
// To stay fast at thousands of routes per host, a virtual host is indexed by path: a
// map from exact path to its routes, and a trie of path segments holding each prefix
// route at the node where its prefix ends and each regex route at the node where the
// whole segments of its literal prefix end ("/api/v[0-9]+" sits under "api"; a regex
// without one sits at the root). A request's candidates are the exact-path routes and
// the routes of the trie nodes along its path; merging these ascending lists visits
// candidates in precedence order, so the index never changes which route wins.
package router

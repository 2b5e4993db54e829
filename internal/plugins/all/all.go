// Package all links every built-in plugin into the binary: importing it registers them.
// Custom binaries import it plus their own plugin packages.
package all

import (
	_ "portico.dev/portico/internal/plugins/acl"
	_ "portico.dev/portico/internal/plugins/basicauth"
	_ "portico.dev/portico/internal/plugins/bodysize"
	_ "portico.dev/portico/internal/plugins/compression"
	_ "portico.dev/portico/internal/plugins/concurrencylimit"
	_ "portico.dev/portico/internal/plugins/cors"
	_ "portico.dev/portico/internal/plugins/iprestriction"
	_ "portico.dev/portico/internal/plugins/jwtauth"
	_ "portico.dev/portico/internal/plugins/keyauth"
	_ "portico.dev/portico/internal/plugins/ratelimit"
	_ "portico.dev/portico/internal/plugins/redirect"
	_ "portico.dev/portico/internal/plugins/requestid"
	_ "portico.dev/portico/internal/plugins/transformer"
	_ "portico.dev/portico/internal/plugins/wasm"
)

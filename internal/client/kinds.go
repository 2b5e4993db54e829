package client

import (
	"fmt"
	"strings"

	"portico.dev/portico/api/v1alpha1"
)

// ResolveKind maps a kind as users type it — singular or plural, any case ("route",
// "Routes", "streamroute") — to its canonical name ("Route"). It fails with the list
// of kinds for anything else.
func ResolveKind(s string) (string, error) {
	l := strings.ToLower(s)
	for _, k := range v1alpha1.Kinds {
		kl := strings.ToLower(k)
		if l == kl || l == kl+"s" {
			return k, nil
		}
	}
	names := make([]string, len(v1alpha1.Kinds))
	for i, k := range v1alpha1.Kinds {
		names[i] = strings.ToLower(k)
	}
	return "", fmt.Errorf("unknown kind %q: one of %s (singular or plural)", s, strings.Join(names, ", "))
}

// Plural is a kind's path segment in the admin API ("Route" → "routes").
func Plural(kind string) string { return strings.ToLower(kind) + "s" }

// Package all links every built-in plugin into the binary: importing it registers them.
// Custom binaries import it plus their own plugin packages.
package all

// Package web holds the browser code of multijuego: the TypeScript client SDK
// (web/sdk), the demo game and admin console (web/app) and their built output
// (web/dist), which is committed and embedded in the binary.
//
// web/dist is generated: edit the sources and run `go generate ./web`.
// A test in this package fails when web/dist is stale.
package web

import (
	"embed"
	"io/fs"
)

//go:generate go run ./build

//go:embed all:dist
var dist embed.FS

// Files returns the built browser files (the contents of web/dist): HTML
// pages at their paths, fingerprinted assets under assets/ and the SDK at
// sdk/multijuego.js.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub only fails for an invalid path, and "dist" is valid.
		panic(err)
	}
	return sub
}

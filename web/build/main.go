// Command build builds multijuego's browser files (see package bundle):
// run by `go generate ./web`, it needs no network and no Node.js.
//
//	go run ./web/build [-web DIR] [-out DIR] [-npm-out DIR] [-sdk DIR] [-app DIR]
//
// By default it finds the web folder (the current one, or ./web), reads
// sdk/ and app/ there, and writes dist/ and sdk/dist/index.js.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/multijuego/multijuego/web/build/bundle"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("build", flag.ContinueOnError)
	web := fl.String("web", "", "the web folder (default: . if it holds sdk/src, else ./web)")
	sdk := fl.String("sdk", "", "the SDK folder (default WEB/sdk)")
	app := fl.String("app", "", "the demo app folder (default WEB/app; missing: SDK only)")
	out := fl.String("out", "", "the site output folder, emptied of stale files (default WEB/dist)")
	npmOut := fl.String("npm-out", "", `the npm package's output folder (default WEB/sdk/dist; "-" for none)`)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if *web == "" {
		*web = "."
		if _, err := os.Stat(filepath.Join("sdk", "src")); err != nil {
			*web = "web"
		}
	}
	if _, err := os.Stat(filepath.Join(*web, "sdk", "src")); err != nil && *sdk == "" {
		return errors.New("cannot find the web folder (with sdk/src): run from the repository root or web/, or pass -web")
	}
	def := func(p *string, rel string) {
		if *p == "" {
			*p = filepath.Join(*web, rel)
		}
	}
	def(sdk, "sdk")
	def(app, "app")
	def(out, "dist")
	def(npmOut, filepath.Join("sdk", "dist"))
	if *npmOut == "-" {
		*npmOut = ""
	}
	cfg := bundle.Config{SDKDir: *sdk, AppDir: *app, OutDir: *out, NPMOutDir: *npmOut}
	res, err := bundle.Build(cfg)
	if err != nil {
		return err
	}
	if err := bundle.Write(cfg, res); err != nil {
		return err
	}
	fmt.Printf("build: wrote %d files to %s\n", len(res.Files), cfg.OutDir)
	return nil
}

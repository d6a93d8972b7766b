// Package bundle builds multijuego's browser files with esbuild: the
// TypeScript SDK (an ES module at a stable name, for pages without a bundler,
// and the npm package's dist/index.js), the demo app's entry points under
// fingerprinted names, its HTML pages with {{asset "src/x.ts"}} replaced by
// those names, and its public files as they are; beside each file the
// server compresses, its brotli variant (X.br, see webui.BrotliSuffix), so
// the server needs no brotli encoder.
//
// The output is a function of the sources only (no clock, no absolute
// paths), so a rebuild that changes nothing writes the same bytes; the
// package web test relies on that to catch a stale web/dist.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/andybalholm/brotli"
	"github.com/evanw/esbuild/pkg/api"

	"github.com/multijuego/multijuego/internal/webui"
)

// Config says where the sources are and where the output goes.
type Config struct {
	// SDKDir holds the SDK; its entry point is src/index.ts.
	SDKDir string
	// AppDir holds the demo app: index.html and **/index.html (templates),
	// src/*.ts and src/*.css (entry points; *.test.ts and *.d.ts are not),
	// public/** (copied). A missing AppDir builds the SDK only.
	AppDir string
	// OutDir receives the site: it is made to hold exactly the built files
	// (stale files are removed).
	OutDir string
	// NPMOutDir, if set, receives the npm package's index.js (the same
	// module as OutDir/sdk/multijuego.js). Other files there (the type
	// declarations tsc writes) are left alone.
	NPMOutDir string
}

// SDKPath is where the SDK module lands in OutDir (served as /sdk/multijuego.js).
const SDKPath = "sdk/multijuego.js"

// AssetsDir is the OutDir folder of fingerprinted files.
const AssetsDir = "assets"

// Target is the JavaScript and CSS level of the output.
const Target = api.ES2020

const sdkBanner = "// multijuego client SDK (ES module). Generated from web/sdk/src by `go generate ./web`; do not edit."

// Result lists what a build produced.
type Result struct {
	// Files maps every OutDir file (slash-separated path) to its contents.
	Files map[string][]byte
	// Assets maps an app entry point ("src/game.ts") to its URL
	// ("/assets/game-5LQ3K2ZB.js").
	Assets map[string]string
	// SDK is the SDK module.
	SDK []byte
}

// Build builds everything in memory; Write puts it on disk.
func Build(cfg Config) (*Result, error) {
	if cfg.SDKDir == "" || cfg.OutDir == "" {
		return nil, errors.New("bundle: SDKDir and OutDir are required")
	}
	res := &Result{Files: map[string][]byte{}, Assets: map[string]string{}}
	sdk, err := buildSDK(cfg.SDKDir)
	if err != nil {
		return nil, err
	}
	res.SDK = sdk
	res.Files[SDKPath] = sdk
	if err := buildSite(cfg.AppDir, res); err != nil {
		return nil, err
	}
	if err := precompress(res.Files); err != nil {
		return nil, err
	}
	return res, nil
}

// buildSite adds the demo app's files, if appDir holds an app.
func buildSite(appDir string, res *Result) error {
	if appDir == "" {
		return nil
	}
	if st, err := os.Stat(appDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("bundle: app dir %s is not a directory", appDir)
	}
	if err := buildApp(appDir, res); err != nil {
		return err
	}
	if err := renderPages(appDir, res); err != nil {
		return err
	}
	return copyPublic(appDir, res)
}

// precompress adds X.br beside every file X the server compresses
// (webui.Compressible), when it is smaller than X. Quality 11, brotli's
// best: the build pays for it once, not every process start.
func precompress(files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if !webui.Compressible(name) {
			continue
		}
		variant := name + webui.BrotliSuffix
		if _, dup := files[variant]; dup {
			return fmt.Errorf("bundle: %s clashes with the brotli variant of %s", variant, name)
		}
		var buf bytes.Buffer
		w := brotli.NewWriterLevel(&buf, brotli.BestCompression)
		if _, err := w.Write(files[name]); err != nil {
			return fmt.Errorf("bundle: brotli %s: %w", name, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("bundle: brotli %s: %w", name, err)
		}
		if buf.Len() < len(files[name]) {
			files[variant] = buf.Bytes()
		}
	}
	return nil
}

// buildSDK bundles web/sdk/src/index.ts into one readable ES module.
func buildSDK(dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	entry := filepath.Join("src", "index.ts")
	if _, err := os.Stat(filepath.Join(abs, entry)); err != nil {
		return nil, fmt.Errorf("bundle: SDK entry point: %w", err)
	}
	r := api.Build(api.BuildOptions{
		AbsWorkingDir: abs,
		EntryPoints:   []string{entry},
		Outfile:       "multijuego.js",
		Bundle:        true,
		Format:        api.FormatESModule,
		Platform:      api.PlatformNeutral,
		Target:        Target,
		Charset:       api.CharsetUTF8,
		LegalComments: api.LegalCommentsNone,
		Banner:        map[string]string{"js": sdkBanner},
		LogLevel:      api.LogLevelSilent,
		Write:         false,
	})
	if err := buildErr("SDK", r); err != nil {
		return nil, err
	}
	for _, f := range r.OutputFiles {
		if filepath.Base(f.Path) == "multijuego.js" {
			return f.Contents, nil
		}
	}
	return nil, errors.New("bundle: esbuild wrote no SDK module")
}

// appEntries lists the app's entry points, relative to the app dir: every
// src/*.ts (not *.test.ts, *.d.ts) and src/*.css, sorted.
func appEntries(appDir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(appDir, "src"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasSuffix(n, ".test.ts") || strings.HasSuffix(n, ".d.ts") {
			continue
		}
		if strings.HasSuffix(n, ".ts") || strings.HasSuffix(n, ".css") {
			out = append(out, "src/"+n)
		}
	}
	sort.Strings(out)
	return out, nil
}

type metafile struct {
	Outputs map[string]struct {
		EntryPoint string `json:"entryPoint"`
	} `json:"outputs"`
}

// buildApp bundles the app's entry points into assets/[name]-[hash].
func buildApp(appDir string, res *Result) error {
	entries, err := appEntries(appDir)
	if err != nil || len(entries) == 0 {
		return err
	}
	abs, err := filepath.Abs(appDir)
	if err != nil {
		return err
	}
	// The working dir is the app's parent, so that the SDK the app imports
	// (../sdk) stays inside it; only relative paths reach the output.
	work := filepath.Dir(abs)
	base := filepath.Base(abs)
	eps := make([]string, len(entries))
	for i, e := range entries {
		eps[i] = path.Join(base, e)
	}
	r := api.Build(api.BuildOptions{
		AbsWorkingDir:     work,
		EntryPoints:       eps,
		Outdir:            filepath.Join(work, "out", AssetsDir), // virtual: Write is false
		Outbase:           filepath.Join(work, base, "src"),
		EntryNames:        "[name]-[hash]",
		AssetNames:        "[name]-[hash]",
		Bundle:            true,
		Format:            api.FormatESModule,
		Platform:          api.PlatformBrowser,
		Target:            Target,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsNone,
		Loader: map[string]api.Loader{
			".svg": api.LoaderFile, ".png": api.LoaderFile, ".jpg": api.LoaderFile, ".gif": api.LoaderFile,
			".webp": api.LoaderFile, ".woff": api.LoaderFile, ".woff2": api.LoaderFile,
		},
		PublicPath: "/" + AssetsDir,
		Metafile:   true,
		LogLevel:   api.LogLevelSilent,
		Write:      false,
	})
	if err := buildErr("app", r); err != nil {
		return err
	}
	outRoot := filepath.Join(work, "out")
	for _, f := range r.OutputFiles {
		rel, err := filepath.Rel(outRoot, f.Path)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("bundle: esbuild output %s outside the output dir", f.Path)
		}
		res.Files[filepath.ToSlash(rel)] = f.Contents
	}
	var meta metafile
	if err := json.Unmarshal([]byte(r.Metafile), &meta); err != nil {
		return fmt.Errorf("bundle: esbuild metafile: %w", err)
	}
	for out, o := range meta.Outputs {
		if o.EntryPoint == "" || strings.HasSuffix(out, ".map") {
			continue
		}
		rel := strings.TrimPrefix(o.EntryPoint, base+"/")
		if !slices.Contains(entries, rel) {
			continue
		}
		// A .ts entry that imports CSS also yields a .css file; the entry's
		// asset is the output of its own kind.
		want := ".js"
		if strings.HasSuffix(rel, ".css") {
			want = ".css"
		}
		if path.Ext(out) != want {
			continue
		}
		res.Assets[rel] = "/" + strings.TrimPrefix(out, "out/")
	}
	for _, e := range entries {
		if res.Assets[e] == "" {
			return fmt.Errorf("bundle: esbuild produced no output for entry point %s", e)
		}
	}
	return nil
}

// pages lists the app's HTML templates: index.html files outside public/
// and src/, relative to the app dir, sorted.
func pages(appDir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(appDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(appDir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "public" || rel == "src" || d.Name() == "node_modules" || (rel != "." && strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "index.html" {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// renderPages executes each HTML template with one function, asset, that
// turns an entry point into its fingerprinted URL.
func renderPages(appDir string, res *Result) error {
	list, err := pages(appDir)
	if err != nil {
		return err
	}
	for _, p := range list {
		src, err := os.ReadFile(filepath.Join(appDir, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		out, err := Render(p, src, res.Assets)
		if err != nil {
			return err
		}
		res.Files[p] = out
	}
	return nil
}

// Render executes one HTML template: {{asset "src/game.ts"}} becomes the
// entry's URL; an unknown entry is an error that names it and the known ones.
func Render(name string, src []byte, assets map[string]string) ([]byte, error) {
	known := make([]string, 0, len(assets))
	for k := range assets {
		known = append(known, k)
	}
	sort.Strings(known)
	funcs := template.FuncMap{"asset": func(entry string) (string, error) {
		u, ok := assets[entry]
		if !ok {
			return "", fmt.Errorf("unknown asset %q: not an entry point of the app (entry points: %s)", entry, strings.Join(known, ", "))
		}
		return u, nil
	}}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, nil); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return b.Bytes(), nil
}

// copyPublic adds app/public/** as it is, at the root of the site.
func copyPublic(appDir string, res *Result) error {
	root := filepath.Join(appDir, "public")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("bundle: %s: only regular files can be public", p)
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if _, dup := res.Files[rel]; dup || rel == AssetsDir || strings.HasPrefix(rel, AssetsDir+"/") {
			return fmt.Errorf("bundle: public file %s clashes with a built file", path.Join("public", rel))
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		res.Files[rel] = b
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func buildErr(what string, r api.BuildResult) error {
	if len(r.Errors) == 0 {
		return nil
	}
	msgs := api.FormatMessages(r.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
	return fmt.Errorf("bundle: building the %s failed:\n%s", what, strings.Join(msgs, ""))
}

// Write makes cfg.OutDir hold exactly res.Files (unchanged files are not
// rewritten; stale files and emptied folders are removed) and writes the
// npm module to cfg.NPMOutDir.
func Write(cfg Config, res *Result) error {
	if err := syncDir(cfg.OutDir, res.Files); err != nil {
		return err
	}
	if cfg.NPMOutDir != "" {
		if err := os.MkdirAll(cfg.NPMOutDir, 0o755); err != nil {
			return err
		}
		if err := writeIfChanged(filepath.Join(cfg.NPMOutDir, "index.js"), res.SDK); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string, files map[string][]byte) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if abs == filepath.Dir(abs) {
		return fmt.Errorf("bundle: refusing to use %s as the output dir", abs)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	var dirs []string
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(abs, p)
		if d.IsDir() {
			if rel != "." {
				dirs = append(dirs, p)
			}
			return nil
		}
		if _, keep := files[filepath.ToSlash(rel)]; !keep {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(abs, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeIfChanged(p, files[n]); err != nil {
			return err
		}
	}
	// Deepest first, so a folder emptied of folders goes too.
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if ents, err := os.ReadDir(d); err == nil && len(ents) == 0 {
			if err := os.Remove(d); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeIfChanged(p string, b []byte) error {
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return os.WriteFile(p, b, 0o644)
}

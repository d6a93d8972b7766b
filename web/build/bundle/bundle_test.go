package bundle_test

import (
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/multijuego/multijuego/internal/webui"
	"github.com/multijuego/multijuego/web/build/bundle"
)

// fixture copies testdata (sdk/ and app/) to a temp dir the test may change.
func fixture(t *testing.T) (cfg bundle.Config) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	return bundle.Config{SDKDir: filepath.Join(dir, "sdk"), AppDir: filepath.Join(dir, "app"), OutDir: filepath.Join(dir, "out"), NPMOutDir: filepath.Join(dir, "npm")}
}

func build(t *testing.T, cfg bundle.Config) *bundle.Result {
	t.Helper()
	res, err := bundle.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var hashed = regexp.MustCompile(`^/assets/([a-z]+)-[A-Z0-9]{8}\.(js|css|svg)$`)

func TestBuildFixture(t *testing.T) {
	res := build(t, fixture(t))

	if got, want := slices.Sorted(maps.Keys(res.Assets)), []string{"src/main.ts", "src/other.ts", "src/style.css"}; !slices.Equal(got, want) {
		t.Fatalf("entry points: got %q, want %q (lib/ and *.test.ts are not entries)", got, want)
	}
	for entry, url := range res.Assets {
		m := hashed.FindStringSubmatch(url)
		if m == nil || "src/"+m[1]+"."+map[string]string{"js": "ts", "css": "css"}[m[2]] != entry {
			t.Errorf("asset %s: got URL %q, want /assets/<name>-<HASH>.<js|css>", entry, url)
		}
		if _, ok := res.Files[strings.TrimPrefix(url, "/")]; !ok {
			t.Errorf("asset %s: %s is not among the built files", entry, url)
		}
	}

	wantIndex := "<!doctype html>\n<!-- comments stay -->\n" +
		`<link rel="stylesheet" href="` + res.Assets["src/style.css"] + "\">\n" +
		`<script type="module" src="` + res.Assets["src/main.ts"] + "\"></script>\n" +
		"<p>plain text & \"quotes\" stay as they are</p>\n"
	if got := string(res.Files["index.html"]); got != wantIndex {
		t.Errorf("index.html:\ngot  %q\nwant %q", got, wantIndex)
	}
	if got, want := string(res.Files["docs/guide/index.html"]), `<script type="module" src="`+res.Assets["src/other.ts"]+"\"></script>\n"; got != want {
		t.Errorf("docs/guide/index.html: got %q, want %q", got, want)
	}

	for _, p := range []string{"robots.txt", "img/logo.svg"} {
		want, _ := os.ReadFile(filepath.Join("testdata", "app", "public", p))
		if !bytes.Equal(res.Files[p], want) {
			t.Errorf("public file %s: got %q, want it copied verbatim %q", p, res.Files[p], want)
		}
	}

	js := string(res.Files[strings.TrimPrefix(res.Assets["src/main.ts"], "/")])
	if !strings.Contains(js, "hello, ") || strings.Contains(js, "must not be an entry") {
		t.Errorf("main bundle should include the imported SDK and not the test file:\n%s", js)
	}
	css := string(res.Files[strings.TrimPrefix(res.Assets["src/style.css"], "/")])
	m := regexp.MustCompile(`url\(([^)]*)\)`).FindStringSubmatch(css)
	if m == nil || !hashed.MatchString(strings.Trim(m[1], `"`)) {
		t.Errorf("style.css should point at a fingerprinted copy of the image, got:\n%s", css)
	} else if _, ok := res.Files[strings.TrimPrefix(strings.Trim(m[1], `"`), "/")]; !ok {
		t.Errorf("style.css refers to %s, which was not built", m[1])
	}
	if strings.Contains(css, "\n  ") {
		t.Errorf("style.css should be minified, got:\n%s", css)
	}

	sdk := string(res.Files[bundle.SDKPath])
	if !strings.Contains(sdk, "export {\n  hello\n};") || !bytes.Equal(res.SDK, res.Files[bundle.SDKPath]) {
		t.Errorf("SDK module should be a readable ES module exporting hello, got:\n%s", sdk)
	}
	for p := range res.Files {
		if strings.Contains(p, "test") {
			t.Errorf("unexpected output %s", p)
		}
	}
	checkBrotli(t, res.Files, "index.html", "docs/guide/index.html", bundle.SDKPath, strings.TrimPrefix(res.Assets["src/main.ts"], "/"))
}

// checkBrotli checks that each of names has a brotli variant that decodes
// to it, and that only compressible files have one.
func checkBrotli(t *testing.T, files map[string][]byte, names ...string) {
	t.Helper()
	for _, name := range names {
		br, ok := files[name+webui.BrotliSuffix]
		if !ok {
			t.Errorf("%s has no brotli variant", name)
			continue
		}
		if got, err := io.ReadAll(brotli.NewReader(bytes.NewReader(br))); err != nil || !bytes.Equal(got, files[name]) {
			t.Errorf("%s%s does not decode to %s (%v)", name, webui.BrotliSuffix, name, err)
		}
	}
	for p := range files {
		if base, ok := strings.CutSuffix(p, webui.BrotliSuffix); ok && !webui.Compressible(base) {
			t.Errorf("%s: a brotli variant of a file the server does not compress", p)
		}
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	a := build(t, fixture(t))
	b := build(t, fixture(t)) // another copy, at another path
	if !maps.EqualFunc(a.Files, b.Files, bytes.Equal) {
		t.Fatalf("two builds of the same sources differ:\n%q\n%q", slices.Sorted(maps.Keys(a.Files)), slices.Sorted(maps.Keys(b.Files)))
	}
}

func TestRender(t *testing.T) {
	assets := map[string]string{"src/game.ts": "/assets/game-ABCDEFGH.js", "src/style.css": "/assets/style-IJKLMNOP.css"}
	tests := []struct {
		name, src, want, wantErr string
	}{
		{name: "substitution", src: `<script src="{{asset "src/game.ts"}}"></script>`, want: `<script src="/assets/game-ABCDEFGH.js"></script>`},
		{name: "spaces", src: `{{ asset "src/style.css" }}|{{asset "src/game.ts"}}`, want: `/assets/style-IJKLMNOP.css|/assets/game-ABCDEFGH.js`},
		{name: "no actions", src: "<p>a < b && c</p>", want: "<p>a < b && c</p>"},
		{name: "unknown asset", src: "<p>\n{{asset \"src/nope.ts\"}}", wantErr: `page.html:2:2: executing "page.html" at <asset "src/nope.ts">: error calling asset: unknown asset "src/nope.ts": not an entry point of the app (entry points: src/game.ts, src/style.css)`},
		{name: "unquoted", src: `{{asset src/game.ts}}`, wantErr: `page.html:1: bad character`},
		{name: "unknown function", src: `{{url "x"}}`, wantErr: `function "url" not defined`},
		{name: "unclosed", src: `{{asset "src/game.ts"`, wantErr: `page.html:1: unclosed action`},
		{name: "no argument", src: `{{asset}}`, wantErr: `wrong number of args for asset`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bundle.Render("page.html", []byte(tt.src), assets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestBuildRefusesUnknownAsset(t *testing.T) {
	cfg := fixture(t)
	page := filepath.Join(cfg.AppDir, "admin", "index.html")
	os.MkdirAll(filepath.Dir(page), 0o755)
	os.WriteFile(page, []byte("<html>\n<script src=\"{{asset \"src/admin.ts\"}}\"></script>\n"), 0o644)
	_, err := bundle.Build(cfg)
	if err == nil || !strings.Contains(err.Error(), `admin/index.html:2:`) || !strings.Contains(err.Error(), `unknown asset "src/admin.ts"`) {
		t.Fatalf("got %v, want an error naming admin/index.html:2 and the unknown asset src/admin.ts", err)
	}
}

func TestBuildReportsCompileErrors(t *testing.T) {
	cfg := fixture(t)
	os.WriteFile(filepath.Join(cfg.AppDir, "src", "other.ts"), []byte("let x = ;\n"), 0o644)
	_, err := bundle.Build(cfg)
	if err == nil || !strings.Contains(err.Error(), "building the app failed") || !strings.Contains(err.Error(), "other.ts:1:") {
		t.Fatalf("got %v, want esbuild's error with file and line", err)
	}
}

func TestBuildRefusesPublicClash(t *testing.T) {
	cfg := fixture(t)
	p := filepath.Join(cfg.AppDir, "public", "sdk", "multijuego.js")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("x"), 0o644)
	_, err := bundle.Build(cfg)
	if err == nil || !strings.Contains(err.Error(), "public/sdk/multijuego.js clashes with a built file") {
		t.Fatalf("got %v, want a clash error", err)
	}

	cfg = fixture(t)
	os.WriteFile(filepath.Join(cfg.AppDir, "public", "robots.txt.br"), []byte("x"), 0o644)
	if _, err := bundle.Build(cfg); err == nil || !strings.Contains(err.Error(), "robots.txt.br clashes with the brotli variant of robots.txt") {
		t.Fatalf("got %v, want a clash with the brotli variant", err)
	}
}

func TestBuildWithoutApp(t *testing.T) {
	cfg := fixture(t)
	cfg.AppDir = filepath.Join(t.TempDir(), "none")
	res := build(t, cfg)
	if got := slices.Sorted(maps.Keys(res.Files)); !slices.Equal(got, []string{bundle.SDKPath, bundle.SDKPath + webui.BrotliSuffix}) {
		t.Fatalf("without an app: got files %q, want only the SDK and its brotli variant", got)
	}
	checkBrotli(t, res.Files, bundle.SDKPath)
}

func TestBuildNeedsSDKEntry(t *testing.T) {
	cfg := fixture(t)
	cfg.SDKDir = t.TempDir()
	if _, err := bundle.Build(cfg); err == nil || !strings.Contains(err.Error(), "SDK entry point") {
		t.Fatalf("got %v, want an error about the missing SDK entry point", err)
	}
}

func TestWriteSyncsOutDir(t *testing.T) {
	cfg := fixture(t)
	res := build(t, cfg)
	stale := []string{"assets/game-OLDHASH1.js", "gone/deep/x.txt", "favicon.ico"}
	for _, p := range stale {
		p = filepath.Join(cfg.OutDir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("stale"), 0o644)
	}
	// an up-to-date file is left as it is (same bytes: not rewritten)
	keep := filepath.Join(cfg.OutDir, "robots.txt")
	os.WriteFile(keep, res.Files["robots.txt"], 0o644)
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(keep, old, old)
	// the npm dir keeps tsc's declarations
	os.MkdirAll(cfg.NPMOutDir, 0o755)
	os.WriteFile(filepath.Join(cfg.NPMOutDir, "index.d.ts"), []byte("export {};\n"), 0o644)

	if err := bundle.Write(cfg, res); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(cfg.OutDir, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(cfg.OutDir, p)
		if d.IsDir() && rel != "." {
			if ents, _ := os.ReadDir(p); len(ents) == 0 {
				t.Errorf("empty folder %s left behind", rel)
			}
		}
		if !d.IsDir() {
			got = append(got, filepath.ToSlash(rel))
			if b, _ := os.ReadFile(p); !bytes.Equal(b, res.Files[filepath.ToSlash(rel)]) {
				t.Errorf("%s: contents differ from the build", rel)
			}
		}
		return nil
	})
	if want := slices.Sorted(maps.Keys(res.Files)); !slices.Equal(got, want) {
		t.Errorf("out dir: got %q, want exactly %q", got, want)
	}
	if st, _ := os.Stat(keep); !st.ModTime().Equal(old) {
		t.Errorf("an unchanged file was rewritten (mtime %v)", st.ModTime())
	}
	if b, err := os.ReadFile(filepath.Join(cfg.NPMOutDir, "index.js")); err != nil || !bytes.Equal(b, res.SDK) {
		t.Errorf("npm index.js: %v, or its contents differ from the SDK module", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.NPMOutDir, "index.d.ts")); err != nil {
		t.Errorf("Write removed a declaration file from the npm dir: %v", err)
	}
}

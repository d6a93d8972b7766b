package web_test

import (
	"bytes"
	"io"
	"io/fs"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/multijuego/multijuego/internal/webui"
	"github.com/multijuego/multijuego/web"
	"github.com/multijuego/multijuego/web/build/bundle"
)

const regenerate = "web/dist is stale: run `go generate ./web` and commit the result"

// TestDistIsFresh rebuilds the sources into a temp dir and compares the
// result with the committed web/dist and web/sdk/dist/index.js, byte for byte.
func TestDistIsFresh(t *testing.T) {
	cfg := bundle.Config{SDKDir: "sdk", AppDir: "app", OutDir: filepath.Join(t.TempDir(), "dist"), NPMOutDir: t.TempDir()}
	res, err := bundle.Build(cfg)
	if err != nil {
		t.Fatalf("building web/: %v", err)
	}
	if err := bundle.Write(cfg, res); err != nil {
		t.Fatal(err)
	}

	have, err := readTree("dist")
	if err != nil {
		t.Fatal(err)
	}
	want, err := readTree(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(maps.Keys(union(have, want)))
	for _, n := range names {
		h, inHave := have[n]
		w, inWant := want[n]
		switch {
		case !inHave:
			t.Fatalf("%s: web/dist/%s is missing", regenerate, n)
		case !inWant:
			t.Fatalf("%s: web/dist/%s is no longer built (a stale file)", regenerate, n)
		case !bytes.Equal(h, w):
			t.Fatalf("%s: web/dist/%s differs from a fresh build (%d bytes, want %d)", regenerate, n, len(h), len(w))
		}
	}

	npm, err := os.ReadFile(filepath.Join("sdk", "dist", "index.js"))
	if err != nil || !bytes.Equal(npm, res.SDK) {
		t.Fatalf("web/sdk/dist/index.js is stale or missing (%v): run `go generate ./web`", err)
	}
}

// TestFiles checks that the embedded tree is web/dist.
func TestFiles(t *testing.T) {
	disk, err := readTree("dist")
	if err != nil {
		t.Fatal(err)
	}
	embedded := map[string][]byte{}
	err = fs.WalkDir(web.Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.Files(), p)
		embedded[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(disk, embedded, bytes.Equal) {
		t.Fatalf("web.Files() holds %q, web/dist holds %q", slices.Sorted(maps.Keys(embedded)), slices.Sorted(maps.Keys(disk)))
	}
	if _, ok := embedded[bundle.SDKPath]; !ok {
		t.Fatalf("web.Files() has no %s", bundle.SDKPath)
	}
}

// TestBrotliVariantsMatchSources decodes every embedded X.br and compares
// it with X (whatever encoder wrote it), checks that the SDK, the pages
// and the bundles have one, and that the server sends it for
// Accept-Encoding: br.
func TestBrotliVariantsMatchSources(t *testing.T) {
	files := web.Files()
	var variants []string
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base, ok := strings.CutSuffix(p, webui.BrotliSuffix)
		if !ok {
			return nil
		}
		if !webui.Compressible(base) {
			t.Errorf("%s: a brotli variant of a type the server does not compress", p)
		}
		src, err := fs.ReadFile(files, base)
		if err != nil {
			t.Errorf("%s has no source beside it: %v", p, err)
			return nil
		}
		br, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(brotli.NewReader(bytes.NewReader(br)))
		if err != nil || !bytes.Equal(got, src) {
			t.Errorf("%s does not decode to %s (%v): %s", p, base, err, regenerate)
		}
		variants = append(variants, base)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{bundle.SDKPath, "index.html", "admin/index.html"} {
		if !slices.Contains(variants, want) {
			t.Errorf("%s has no brotli variant (have %q)", want, variants)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(variants), func(p string) bool { return !strings.HasPrefix(p, bundle.AssetsDir+"/") })); n < 3 {
		t.Errorf("%d fingerprinted assets have a brotli variant, want the game, the admin console and the style sheet", n)
	}

	h, err := webui.New(files, webui.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/"+bundle.SDKPath, nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	sdk, _ := fs.ReadFile(files, bundle.SDKPath)
	got, err := io.ReadAll(brotli.NewReader(rec.Body))
	if rec.Header().Get("Content-Encoding") != "br" || rec.Header().Get("Vary") != "Accept-Encoding" || err != nil || !bytes.Equal(got, sdk) {
		t.Errorf("GET /%s with br: Content-Encoding %q, Vary %q, decoded body equal to the file: %v (%v)",
			bundle.SDKPath, rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"), bytes.Equal(got, sdk), err)
	}
}

// readTree reads every file under dir, keyed by slash-separated path.
func readTree(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	return out, err
}

func union(a, b map[string][]byte) map[string][]byte {
	u := maps.Clone(a)
	maps.Copy(u, b)
	return u
}

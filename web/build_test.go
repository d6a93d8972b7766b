package web_test

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

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

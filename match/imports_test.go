package match_test

import (
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/multijuego/multijuego"

// pureStd is the allow-list of standard packages the engine and the games
// may import: no network, storage, processes or cgo.
var pureStd = []string{
	"bytes", "cmp", "context", "crypto/rand", "encoding/binary", "encoding/hex",
	"encoding/json", "errors", "fmt", "hash/maphash", "iter", "log/slog", "maps",
	"math", "math/bits", "math/rand/v2", "runtime/debug", "slices", "sort", "strconv",
	"strings", "sync", "sync/atomic", "time", "unicode", "unicode/utf8",
}

// testOnlyStd may be imported by _test.go files too.
var testOnlyStd = []string{
	"testing", "reflect", "go/build", "go/parser", "go/token", "io/fs", "os",
	"path/filepath",
}

// testOnlyModule are the module's packages _test.go files may import too:
// test helpers that read files (the protocol document, golden frames).
var testOnlyModule = []string{module + "/internal/protocoltest"}

// banned must not be reachable at all, even through the standard library.
func banned(path string) bool {
	for _, b := range []string{"net", "os/exec", "database/sql", "plugin", "crypto/tls", "syscall/js", "runtime/cgo"} {
		if path == b || strings.HasPrefix(path, b+"/") {
			return true
		}
	}
	return false
}

// TestPureImports fails if match/ or games/ import anything outside the
// allow-list, directly, or reach a banned package through the standard
// library.
func TestPureImports(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	std := map[string]bool{}
	fset := token.NewFileSet()
	files := 0
	for _, dir := range []string{"match", "games"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			files++
			isTest := strings.HasSuffix(path, "_test.go")
			rel, _ := filepath.Rel(root, path)
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				switch {
				case p == module+"/match" || strings.HasPrefix(p, module+"/match/") || strings.HasPrefix(p, module+"/games/"):
				case slices.Contains(pureStd, p):
					if !isTest {
						std[p] = true
					}
				case isTest && (slices.Contains(testOnlyStd, p) || slices.Contains(testOnlyModule, p)):
				default:
					t.Errorf("%s imports %q, which is not allowed in the engine or the games", rel, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 10 {
		t.Fatalf("only %d files found under %s; is the walk broken?", files, root)
	}

	// Transitively, through the standard library's own sources.
	ctx := build.Default
	if ctx.GOROOT == "" {
		t.Skip("no GOROOT: transitive check skipped")
	}
	seen := map[string]bool{}
	var walk func(path string, chain []string)
	walk = func(path string, chain []string) {
		if seen[path] || path == "C" || path == "unsafe" {
			return
		}
		seen[path] = true
		chain = append(chain, path)
		if banned(path) {
			t.Errorf("banned package reachable: %s", strings.Join(chain, " -> "))
			return
		}
		pkg, err := ctx.Import(path, "", 0)
		if err != nil {
			t.Errorf("loading %s: %v", path, err)
			return
		}
		for _, p := range pkg.Imports {
			walk(p, chain)
		}
	}
	for p := range std {
		walk(p, nil)
	}
	if !seen["time"] || len(seen) < 20 {
		t.Errorf("transitive walk saw only %d packages", len(seen))
	}
}

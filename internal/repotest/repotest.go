// Package repotest finds the repository's files from a test, whatever
// package directory the test runs in.
package repotest

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the module root: the nearest directory above the working
// directory (a test's package directory) that holds go.mod.
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("repotest: no go.mod above the working directory")
		}
		dir = parent
	}
}

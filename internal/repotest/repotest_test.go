package repotest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRootHoldsTheModule(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(Root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "module github.com/multijuego/multijuego\n"; len(b) < len(want) || string(b[:len(want)]) != want {
		t.Fatalf("go.mod starts %q", b[:min(len(b), 60)])
	}
}

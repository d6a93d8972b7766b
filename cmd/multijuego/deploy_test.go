package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/repotest"
)

// deploy/systemd/multijuego.service is a unit systemd accepts, for this
// binary, and its command line is one the binary takes.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("systemd-analyze is required in CI: %v", err)
		}
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(filepath.Join(repotest.Root(t), "deploy", "systemd", "multijuego.service"))
	if err != nil {
		t.Fatal(err)
	}
	const exec0 = "ExecStart=/usr/local/bin/multijuego "
	var args []string
	for _, line := range strings.Split(string(unit), "\n") {
		if rest, ok := strings.CutPrefix(line, exec0); ok {
			args = strings.Fields(rest)
		}
	}
	if len(args) == 0 {
		t.Fatal("no ExecStart with /usr/local/bin/multijuego")
	}
	// systemd checks that ExecStart's program exists: point it at the
	// test's build.
	dir := t.TempDir()
	path := filepath.Join(dir, "multijuego.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/multijuego", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The flags parse: `serve ... --help` lists the settings and exits 0.
	out, err := exec.Command(binary, append(args, "--help")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "data-dir") {
		t.Fatalf("%s %s --help: %v\n%s", binary, strings.Join(args, " "), err, out)
	}
}

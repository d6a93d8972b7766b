// Package softhsmtest makes SoftHSM2 tokens for tests of the pkcs11 key
// provider.
package softhsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/multijuego/multijuego/internal/seal/hsm"
)

// Module is where Debian's softhsm2 package puts the PKCS#11 library.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Token makes a SoftHSM2 token in a temporary directory of its own,
// points SOFTHSM2_CONF at it for the rest of the test (so t may not be
// parallel) and returns the options that open it. Without softhsm2 the
// test is skipped, or fails when CI=true: CI must never pass by skipping.
//
// SoftHSM2 reads SOFTHSM2_CONF when it is initialized, so every provider
// a test opens on the module must be closed before the next test makes
// its token.
func Token(t testing.TB) hsm.Options {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err == nil {
		_, err = os.Stat(Module)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("softhsm2 is required in CI (scripts/test.sh installs it): %v", err)
		}
		t.Skipf("softhsm2 not installed (apt-get install softhsm2; set CI=true to make this fatal): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	body := "directories.tokendir = " + filepath.Join(dir, "tokens") + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	opts := hsm.Options{Module: Module, Token: "multijuego-test", PIN: "1234"}
	cmd := exec.Command(util, "--init-token", "--free", "--label", opts.Token, "--pin", opts.PIN, "--so-pin", "5678")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return opts
}

package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// sealedKeys is a keys directory sealed by a local keyring of its own, as
// the server opens it.
func sealedKeys(t testing.TB) auth.KeysDir {
	t.Helper()
	root := t.TempDir()
	p, err := seal.OpenLocal(filepath.Join(root, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	return auth.KeysDir{Path: filepath.Join(root, "keys"), Seal: p}
}

// keyringPath is where sealedKeys put d's keyring.
func keyringPath(d auth.KeysDir) string { return filepath.Join(filepath.Dir(d.Path), "keyring.json") }

func keyringOf(t *testing.T, d auth.KeysDir) *seal.Local {
	t.Helper()
	return d.Seal.(*seal.Local)
}

// The signing keys and the device-id secret are sealed in their files: no
// seed in clear, and a node with the same keyring verifies the first
// node's tokens and finds its devices.
func TestKeysAreSealedAtRest(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	keys := sealedKeys(t)
	a := newServiceIn(t, st, clk, keys)
	pair, err := a.Device(ctx, "sealed-device-0001", meta)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(keys.Path, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(f, ".json") && (strings.Contains(string(b), `"seed"`) || !strings.Contains(string(b), `"sealed_seed"`)):
			t.Errorf("%s holds its seed in clear:\n%s", filepath.Base(f), b)
		case strings.HasSuffix(f, "device-id.key") && !strings.HasPrefix(string(b), "sealed:"):
			t.Errorf("device-id.key is in clear: %q", b)
		}
	}
	b := newServiceIn(t, st, clk, keys)
	if _, err := b.Authenticate(pair.AccessToken); err != nil {
		t.Errorf("another node with the same keyring: %v", err)
	}
	if again, err := b.Device(ctx, "sealed-device-0001", meta); err != nil || again.AccountID != pair.AccountID {
		t.Errorf("the device on another node: %+v, %v; want account %s", again, err, pair.AccountID)
	}
}

// Keys written in clear (before sealing, or by hand) keep working and are
// rewritten sealed at start; a key-encryption key rotation plus Rewrap
// seals them under the new version, and the old version stays readable.
func TestClearKeysSealedAndRewrapped(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	keys := sealedKeys(t)
	plain := newServiceIn(t, st, clk, auth.KeysDir{Path: keys.Path})
	pair, err := plain.Device(ctx, "clear-device-0001", meta)
	if err != nil {
		t.Fatal(err)
	}
	sealed := newServiceIn(t, st, clk, keys)
	if _, err := sealed.Authenticate(pair.AccessToken); err != nil {
		t.Fatalf("a token signed by a key in clear, after sealing: %v", err)
	}
	before := readDir(t, keys.Path)
	for name, b := range before {
		if !strings.Contains(b, "sealed") {
			t.Errorf("%s not sealed at start: %s", name, b)
		}
	}
	ring := keyringOf(t, keys)
	old, _ := ring.Current(ctx)
	if _, err := seal.Rotate(keyringPath(keys), clk.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := keys.Rewrap(); err != nil || n != 2 {
		t.Fatalf("Rewrap = %d, %v; want 2 files (signing key, device-id secret)", n, err)
	}
	for name, b := range readDir(t, keys.Path) {
		if b == before[name] {
			t.Errorf("%s unchanged by Rewrap", name)
		}
	}
	if cur, _ := ring.Current(ctx); cur == old {
		t.Errorf("key-encryption key still %s after the rotation", cur)
	}
	again := newServiceIn(t, st, clk, keys)
	if p, err := again.Device(ctx, "clear-device-0001", meta); err != nil || p.AccountID != pair.AccountID {
		t.Errorf("the device after the rotation: %v", err)
	}
}

// A keys directory sealed under a keyring the node does not have is
// refused at start with the file named, not read as garbage.
func TestSealedKeysNeedTheirKeyring(t *testing.T) {
	keys := sealedKeys(t)
	if _, err := auth.OpenKeyring(keys, time.Minute, time.Now); err != nil {
		t.Fatal(err)
	}
	other := sealedKeys(t)
	other.Path = keys.Path
	_, err := auth.OpenKeyring(other, time.Minute, time.Now)
	if err == nil || !strings.Contains(err.Error(), ".json") {
		t.Fatalf("another keyring: %v, want an error naming the key file", err)
	}
	if _, err := auth.OpenKeyring(auth.KeysDir{Path: keys.Path}, time.Minute, time.Now); err == nil || !strings.Contains(err.Error(), "no key provider") {
		t.Fatalf("no provider: %v, want one saying none is configured", err)
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}

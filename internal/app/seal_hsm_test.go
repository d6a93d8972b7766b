//go:build cgo

package app_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/seal/hsm/softhsmtest"
)

// With seal.provider=pkcs11 the server seals its signing keys and the
// device-id secret through the HSM (SoftHSM2 here); `keys rotate-kek`
// makes a new key in the token and seals them again under it; a restarted
// server unseals them and accepts the tokens it issued before.
func TestServeSealsKeysInHSM(t *testing.T) {
	opts := softhsmtest.Token(t)
	cfg := testConfig(t)
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(opts.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Seal.Provider = "pkcs11"
	cfg.Seal.PKCS11.Module, cfg.Seal.PKCS11.Token, cfg.Seal.PKCS11.PINFile = opts.Module, opts.Token, pinFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	m, stop := startMain(t, cfg)
	res, body := postJSON(t, m.URL()+"/v1/auth/register", `{"username":"sealed","password":"right-horse-battery"}`)
	stop()
	if res.StatusCode != 201 {
		t.Fatalf("register: %d %v", res.StatusCode, body)
	}
	token := body["access_token"].(string)
	checkSealed(t, cfg.KeysDir(), hsmVersion(1))

	var out, errb bytes.Buffer
	args := []string{"keys", "rotate-kek", "--data-dir", cfg.DataDir, "--seal-provider", "pkcs11",
		"--seal-pkcs11-module", opts.Module, "--seal-pkcs11-token", opts.Token, "--seal-pkcs11-pin-env", "TEST_HSM_PIN"}
	t.Setenv("TEST_HSM_PIN", opts.PIN)
	if code := app.Run(context.Background(), args, &out, &errb, os.Environ()); code != 0 {
		t.Fatalf("keys rotate-kek: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "new key-encryption key pkcs11:2 in token "+opts.Token) {
		t.Errorf("keys rotate-kek said %q", out.String())
	}
	checkSealed(t, cfg.KeysDir(), hsmVersion(2))

	m, stop = startMain(t, cfg)
	defer stop()
	req, _ := http.NewRequest("GET", m.URL()+"/v1/account", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	acc, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	acc.Body.Close()
	if acc.StatusCode != 200 {
		t.Fatalf("a token issued before the rotation, after a restart: %s", acc.Status)
	}
	if res, body := postJSON(t, m.URL()+"/v1/auth/login", `{"username":"sealed","password":"right-horse-battery"}`); res.StatusCode != 200 {
		t.Fatalf("login after the rotation: %d %v", res.StatusCode, body)
	}

	// The HSM drops the server's sessions: a sign-up (which wraps the new
	// account's data key in the token) still works, and /metrics counts
	// the reopen.
	closeAllSessions(t, opts.Module, opts.Token)
	if res, body := postJSON(t, m.URL()+"/v1/auth/register", `{"username":"after-hsm-restart","password":"right-horse-battery"}`); res.StatusCode != 201 {
		t.Fatalf("register after the HSM dropped the sessions: %d %v", res.StatusCode, body)
	}
	if metrics := getText(t, m.URL()+"/metrics"); !strings.Contains(metrics, "multijuego_seal_pkcs11_reopens_total 1\n") {
		t.Errorf("/metrics does not count one reopen:\n%s", grepLines([]byte(metrics), "pkcs11"))
	}
}

// closeAllSessions closes every session of this process on the token, as
// the library does when the HSM restarts, through a second handle on the
// module (which shares the server's state in the library).
func closeAllSessions(t *testing.T, module, token string) {
	t.Helper()
	c, slot := softhsmtest.Library(t, module, token) // destroyed, not finalized: that would end the server's state in the library too
	if err := c.CloseAllSessions(slot); err != nil {
		t.Fatal(err)
	}
}

// hsmVersion checks that a wrapped key is the pkcs11 provider's, under
// KEK version v.
func hsmVersion(v uint32) func([]byte) bool {
	return func(w []byte) bool { return len(w) > 6 && w[0] == 'P' && binary.BigEndian.Uint32(w[2:6]) == v }
}

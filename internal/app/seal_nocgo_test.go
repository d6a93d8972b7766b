//go:build !cgo

package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/app"
)

// A static build (CGO_ENABLED=0, as scripts/release.sh makes) configured
// with seal.provider=pkcs11 says what it needs.
func TestPKCS11NeedsCgo(t *testing.T) {
	cfg := testConfig(t)
	cfg.Seal.Provider = "pkcs11"
	cfg.Seal.PKCS11.Module, cfg.Seal.PKCS11.Token, cfg.Seal.PKCS11.PINEnv = "/usr/lib/softhsm/libsofthsm2.so", "t", "TEST_HSM_PIN"
	t.Setenv("TEST_HSM_PIN", "1234")
	m := &app.Main{Config: cfg}
	err := m.Open(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "pkcs11 provider needs a build with cgo") {
		t.Fatalf("Open = %v, want it to say the pkcs11 provider needs a build with cgo", err)
	}
}

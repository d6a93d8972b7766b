//go:build cgo

package softhsmtest

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// Library opens the PKCS#11 module a second time in this process, as
// another user of the library would: it shares the provider's state in
// the library (its sessions, its login), so a test can act on it as an
// HSM restart would. It returns the slot of the token labelled token; the
// handle is destroyed (not finalized) when the test ends.
func Library(t testing.TB, module, token string) (*pkcs11.Ctx, uint) {
	t.Helper()
	c := pkcs11.New(module)
	if c == nil {
		t.Fatalf("cannot load %s", module)
	}
	t.Cleanup(c.Destroy)
	if err := c.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := c.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range slots {
		info, err := c.GetTokenInfo(slot)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimRight(info.Label, " \x00") == token {
			return c, slot
		}
	}
	t.Fatalf("no token %q in slots %v", token, slots)
	return nil, 0
}

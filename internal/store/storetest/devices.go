package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/multijuego/multijuego/internal/store"
)

// testRekeyDevices covers the move from device ids stored in clear to keyed
// hashes: ClearDevices pages through the ids without the hashed prefix,
// RekeyDevice replaces one, and a rekeyed device is found by its new id
// only.
func testRekeyDevices(t *testing.T, s *store.Store) {
	const prefix = "d1$"
	a, b := newAccount("rekey-a"), newAccount("rekey-b")
	mustCreate(t, s, a, "clear-device-a1")
	mustCreate(t, s, b, prefix+"already-hashed-b1")
	for i, d := range []string{"clear-device-a2", "clear-device-a3", "Clear_%device_a4"} {
		mustCreate(t, s, newAccount(fmt.Sprintf("rekey-c%d", i)), d)
	}
	var all []string
	for after := ""; ; {
		page, err := s.ClearDevices(ctx, prefix, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		all = append(all, page...)
		after = page[len(page)-1]
	}
	slices.Sort(all)
	want := []string{"Clear_%device_a4", "clear-device-a1", "clear-device-a2", "clear-device-a3"}
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("ClearDevices = %q, want %q", all, want)
	}

	if err := s.RekeyDevice(ctx, "clear-device-a1", prefix+"hash-a1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AccountByDeviceIDs(ctx, "clear-device-a1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old id after rekey: %v, want not found", err)
	}
	got, _, err := s.AccountByDeviceIDs(ctx, prefix+"hash-a1")
	if err != nil || got.ID != a.ID {
		t.Fatalf("new id after rekey = %s, %v; want %s", got.ID, err, a.ID)
	}
	// Twice (another node got there first) is no error.
	if err := s.RekeyDevice(ctx, "clear-device-a1", prefix+"hash-a1"); err != nil {
		t.Fatalf("second rekey: %v", err)
	}
	// A new id already stored: the clear row goes.
	if err := s.RekeyDevice(ctx, "clear-device-a2", prefix+"hash-a1"); err != nil {
		t.Fatalf("rekey onto a stored id: %v", err)
	}
	if _, _, err := s.AccountByDeviceIDs(ctx, "clear-device-a2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("clear row kept after rekey onto a stored id: %v", err)
	}
	left, err := s.ClearDevices(ctx, prefix, "", 100)
	if err != nil || len(left) != 2 {
		t.Fatalf("ClearDevices after rekeying = %q, %v; want 2", left, err)
	}
}

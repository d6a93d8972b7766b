package seal_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

func newFields(t *testing.T, on bool) (*seal.Fields, *seal.Local) {
	t.Helper()
	l, _ := openLocal(t)
	return seal.NewFields(l, storetest.Vault(t, ""), bytes.Repeat([]byte{7}, seal.KeySize), on, 4), l
}

func TestFieldsRoundTrip(t *testing.T) {
	ctx := context.Background()
	f, _ := newFields(t, true)
	v, err := f.Seal(ctx, "acc1", "account:acc1", "email", "ana@example.com")
	if err != nil || !seal.IsSealed(v) || strings.Contains(v, "ana") {
		t.Fatalf("Seal: %q, %v", v, err)
	}
	if got, err := f.Open(ctx, "acc1", "account:acc1", "email", v); err != nil || got != "ana@example.com" {
		t.Errorf("Open: %q, %v", got, err)
	}
	// Bound to its record, field and owner.
	for _, c := range [][3]string{{"acc1", "account:acc2", "email"}, {"acc1", "account:acc1", "ip"}} {
		if _, err := f.Open(ctx, c[0], c[1], c[2], v); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("Open as %v: %v, want ErrOpen", c, err)
		}
	}
	if _, err := f.Seal(ctx, "acc2", "account:acc2", "email", "x@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Open(ctx, "acc2", "account:acc1", "email", v); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("Open under another owner's key: %v, want ErrOpen", err)
	}
	// Values stored in clear read as they are; an empty one stays empty.
	if got, err := f.Open(ctx, "acc1", "r", "email", "old@example.com"); err != nil || got != "old@example.com" {
		t.Errorf("clear value: %q, %v", got, err)
	}
	if v, err := f.Seal(ctx, "acc1", "r", "email", ""); err != nil || v != "" {
		t.Errorf("empty: %q, %v", v, err)
	}
}

// Destroying an owner's key makes what was sealed for it unreadable, on
// this node and on another that opens the same vault, and nothing new is
// sealed for the owner afterwards.
func TestFieldsDestroy(t *testing.T) {
	ctx := context.Background()
	l, _ := openLocal(t)
	vault := storetest.Vault(t, "")
	idx := bytes.Repeat([]byte{7}, seal.KeySize)
	a := seal.NewFields(l, vault, idx, true, 10)
	v, err := a.Seal(ctx, "gone", "account:gone", "email", "gone@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Destroy(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	b := seal.NewFields(l, vault, idx, true, 10) // another node, after the erasure
	for name, f := range map[string]*seal.Fields{"this node": a, "another node": b} {
		if _, err := f.Open(ctx, "gone", "account:gone", "email", v); !errors.Is(err, seal.ErrErased) {
			t.Errorf("%s: Open after Destroy: %v, want ErrErased", name, err)
		}
		if _, err := f.Seal(ctx, "gone", "audit:gone", "ip", "192.0.2.1"); !errors.Is(err, seal.ErrErased) {
			t.Errorf("%s: Seal after Destroy: %v, want ErrErased", name, err)
		}
	}
}

// With sealing off values are stored in clear, and indexed all the same.
func TestFieldsOff(t *testing.T) {
	ctx := context.Background()
	off, _ := newFields(t, false)
	on, _ := newFields(t, true)
	if v, err := off.Seal(ctx, "a", "account:a", "email", "ana@example.com"); err != nil || v != "ana@example.com" {
		t.Errorf("off: %q, %v", v, err)
	}
	if off.Index("email", "ana@example.com") != on.Index("email", "ana@example.com") {
		t.Error("the index depends on whether sealing is on")
	}
}

func TestFieldsIndex(t *testing.T) {
	f, _ := newFields(t, true)
	g, _ := newFields(t, true) // another node: the same index key
	l, _ := openLocal(t)
	other := seal.NewFields(l, storetest.Vault(t, ""), bytes.Repeat([]byte{8}, seal.KeySize), true, 4)
	x := f.Index("email", "ana@example.com")
	if x != g.Index("email", "ana@example.com") {
		t.Error("one value, one key: the indexes differ")
	}
	if strings.Contains(x, "ana") || x == f.Index("email", "bob@example.com") || x == f.Index("username", "ana@example.com") {
		t.Error("the index shows its value, or two values (or fields) share one")
	}
	if x == other.Index("email", "ana@example.com") {
		t.Error("two index keys give one index")
	}
}

// Many owners sealed at once from many goroutines, with a cache smaller
// than the owners: every value opens, each owner has one key.
func TestFieldsConcurrent(t *testing.T) {
	ctx := context.Background()
	f, _ := newFields(t, true)
	owners := []string{"o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"}
	if err := f.Prepare(ctx, owners[:4], owners[4:]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := owners[i%len(owners)]
			v, err := f.Seal(ctx, o, "r", "ip", o+"-value")
			if err == nil {
				var got string
				if got, err = f.Open(ctx, o, "r", "ip", v); err == nil && got != o+"-value" {
					err = errors.New("wrong value: " + got)
				}
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Two nodes on one vault: the second, whose cache holds the key, opens a
// value after the first destroyed the key until it refreshes the owner;
// then it gives ErrErased.
func TestFieldsRefreshSeesAnotherNodesErasure(t *testing.T) {
	ctx := context.Background()
	l, _ := openLocal(t)
	v := storetest.Vault(t, "")
	idx := bytes.Repeat([]byte{7}, seal.KeySize)
	a, b := seal.NewFields(l, v, idx, true, 4), seal.NewFields(l, v, idx, true, 4)
	s, err := a.Seal(ctx, "acc1", "r", "f", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open(ctx, "acc1", "r", "f", s); err != nil || got != "secret" {
		t.Fatalf("Open on b: %q, %v", got, err)
	}
	if err := a.Destroy(ctx, "acc1"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open(ctx, "acc1", "r", "f", s); err != nil || got != "secret" {
		t.Fatalf("b's cache before Refresh: %q, %v (the cache is what Refresh is for)", got, err)
	}
	if err := b.Refresh(ctx, []string{"acc1", "nobody"}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open(ctx, "acc1", "r", "f", s); !errors.Is(err, seal.ErrErased) {
		t.Fatalf("Open after Refresh: %q, %v, want ErrErased", got, err)
	}
	if _, err := b.Seal(ctx, "acc1", "r", "f", "again"); !errors.Is(err, seal.ErrErased) {
		t.Fatalf("Seal for an erased owner: %v, want ErrErased", err)
	}
	if _, err := b.Seal(ctx, "nobody", "r", "f", "x"); err != nil {
		t.Fatalf("Seal for an owner refreshed while it had no key: %v", err)
	}
}

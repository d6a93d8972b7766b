//go:build cgo

package hsm_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/seal/hsm"
	"github.com/multijuego/multijuego/internal/seal/hsm/softhsmtest"
	"github.com/multijuego/multijuego/internal/seal/sealtest"
)

func open(t *testing.T, opts hsm.Options) *hsm.Provider {
	t.Helper()
	p, err := hsm.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestConformance(t *testing.T) {
	sealtest.Provider(t, func(t *testing.T) (seal.Provider, func()) {
		p := open(t, softhsmtest.Token(t))
		return p, func() {
			if _, err := p.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Another process (a second provider on the token) rotates: this one
// unwraps the new version's keys at once and wraps under it after Refresh.
func TestRotationByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	opts := softhsmtest.Token(t)
	opts.Refresh = 50 * time.Millisecond
	a, b := open(t, opts), open(t, opts)
	old, err := a.Wrap(ctx, bytes.Repeat([]byte{1}, seal.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := b.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.Wrap(ctx, bytes.Repeat([]byte{2}, seal.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Unwrap(ctx, w, nil); err != nil || got[0] != 2 {
		t.Fatalf("a unwraps a key under b's new KEK: %x, %v", got, err)
	}
	if got, err := b.Unwrap(ctx, old, nil); err != nil || got[0] != 1 {
		t.Fatalf("b unwraps a key under the old KEK: %x, %v", got, err)
	}
	time.Sleep(2 * opts.Refresh)
	if cur, err := a.Current(ctx); err != nil || cur != v2 {
		t.Fatalf("a's Current after Refresh = %q, %v; want %q", cur, err, v2)
	}
}

// The KEKs are made sensitive and not extractable: the token refuses to
// hand out their value.
func TestKeysStayInTheToken(t *testing.T) {
	opts := softhsmtest.Token(t)
	p, err := hsm.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	c := pkcs11.New(opts.Module)
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	defer c.Finalize()
	slots, err := c.GetSlotList(true)
	if err != nil || len(slots) == 0 {
		t.Fatalf("slots %v, %v", slots, err)
	}
	s, err := c.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(s, pkcs11.CKU_USER, opts.PIN); err != nil {
		t.Fatal(err)
	}
	if err := c.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, hsm.DefaultKeyLabel)}); err != nil {
		t.Fatal(err)
	}
	objs, _, err := c.FindObjects(s, 10)
	c.FindObjectsFinal(s)
	if err != nil || len(objs) != 1 {
		t.Fatalf("found %d keys, %v; want 1", len(objs), err)
	}
	attrs, err := c.GetAttributeValue(s, objs[0], []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(attrs[0].Value, []byte{1}) || !bytes.Equal(attrs[1].Value, []byte{0}) || !bytes.Equal(attrs[2].Value, []byte{1}) {
		t.Errorf("sensitive=%x extractable=%x token=%x; want 01 00 01", attrs[0].Value, attrs[1].Value, attrs[2].Value)
	}
	if v, err := c.GetAttributeValue(s, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
		t.Errorf("the token gave out the key's value: %x", v[0].Value)
	}
}

func TestOpenErrors(t *testing.T) {
	opts := softhsmtest.Token(t)
	for name, tc := range map[string]struct {
		change func(*hsm.Options)
		want   string
	}{
		"wrong pin":     {func(o *hsm.Options) { o.PIN = "0000" }, "log in"},
		"unknown token": {func(o *hsm.Options) { o.Token = "nope" }, `no token labelled "nope"`},
		"no module":     {func(o *hsm.Options) { o.Module = "/nonexistent/libpkcs11.so" }, "cannot load"},
	} {
		o := opts
		tc.change(&o)
		p, err := hsm.Open(context.Background(), o)
		if err == nil {
			p.Close()
			t.Errorf("%s: Open succeeded", name)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, tc.want)
		}
	}
	// After the failures, the module still opens (they released it).
	open(t, opts)
}

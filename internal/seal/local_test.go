package seal_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/seal/sealtest"
)

func openLocal(t *testing.T) (*seal.Local, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys", "keyring.json")
	l, err := seal.OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

func TestLocalConformance(t *testing.T) {
	sealtest.Provider(t, func(t *testing.T) (seal.Provider, func()) {
		l, path := openLocal(t)
		return l, func() {
			if _, err := seal.Rotate(path, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A keyring is its owner's only, and one made readable by others is
// tightened when opened.
func TestLocalKeyringFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix file modes")
	}
	_, path := openLocal(t)
	mode := func() os.FileMode {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	if m := mode(); m != 0o600 {
		t.Fatalf("new keyring mode %v, want 0600", m)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Errorf("keys dir mode %v, want 0700", st.Mode().Perm())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.OpenLocal(path); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0o600 {
		t.Errorf("keyring mode after open %v, want 0600", m)
	}
	// A Secret mounted for a non-root process: read-only, readable by its
	// group. Opened as it is.
	if err := os.Chmod(path, 0o440); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.OpenLocal(path); err != nil {
		t.Errorf("a read-only keyring readable by its group: %v", err)
	}
	if m := mode(); m != 0o440 {
		t.Errorf("read-only keyring mode after open %v, want 0440 left as it is", m)
	}
	// Readable by everyone and not writable: refused.
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.OpenLocal(path); err == nil {
		t.Error("a keyring readable by everyone was opened")
	}
}

// A process that opened the keyring before another rotated it (the CLI
// while the server runs) wraps under the new version and unwraps keys
// the other process wrapped under it.
func TestLocalSeesRotationByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	server, path := openLocal(t)
	before, _ := server.Current(ctx)
	if _, err := seal.Rotate(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	cli, err := seal.OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cli.Wrap(ctx, bytes.Repeat([]byte{9}, seal.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := server.Unwrap(ctx, w, nil); err != nil || got[0] != 9 {
		t.Fatalf("the server unwrapping a key under the new version: %v", err)
	}
	if after, _ := server.Current(ctx); after == before {
		t.Errorf("Current is still %q after the rotation", after)
	}
}

// Processes starting together on one shared, empty directory end up with
// one keyring: what one wraps, every other unwraps.
func TestLocalCreatedOnceByRacingProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyring.kek")
	rings := make([]*seal.Local, 8)
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() { rings[i], errs[i] = seal.OpenLocal(path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
	}
	w, err := rings[0].Wrap(ctx, bytes.Repeat([]byte{5}, seal.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rings {
		if _, err := r.Unwrap(ctx, w, nil); err != nil {
			t.Errorf("process %d cannot unwrap what process 0 wrapped: %v", i, err)
		}
	}
}

func TestLocalRefusesBrokenKeyrings(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":       "{",
		"no current key": `{"current":2,"keys":[{"version":1,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"short key":      `{"current":1,"keys":[{"version":1,"key":"AAAA"}]}`,
		"version twice":  `{"current":1,"keys":[{"version":1,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},{"version":1,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"empty keyring":  `{}`,
	} {
		path := filepath.Join(t.TempDir(), "keyring.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := seal.OpenLocal(path); err == nil {
			t.Errorf("%s: OpenLocal succeeded", name)
		}
	}
}

// A key wrapped under a version the keyring no longer has (a keyring
// restored from an old backup) gives ErrOpen naming the version.
func TestLocalUnknownVersion(t *testing.T) {
	ctx := context.Background()
	a, _ := openLocal(t)
	_, pathB := openLocal(t)
	if _, err := seal.Rotate(pathB, time.Now()); err != nil {
		t.Fatal(err)
	}
	b, err := seal.OpenLocal(pathB)
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.Wrap(ctx, bytes.Repeat([]byte{1}, seal.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Unwrap(ctx, w, nil); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("Unwrap under a missing version: %v, want ErrOpen", err)
	}
}

// The data-key cache is bounded: more owners than it holds still open,
// through the provider.
func TestSealerCacheBound(t *testing.T) {
	ctx := context.Background()
	l, _ := openLocal(t)
	s := seal.New(l, 2)
	var keys []seal.Key
	var cts [][]byte
	for i := range 5 {
		owner := string(rune('a' + i))
		k, err := s.NewKey(ctx, owner, 1)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := s.Seal(ctx, k, owner, "f", []byte(owner))
		if err != nil {
			t.Fatal(err)
		}
		keys, cts = append(keys, k), append(cts, ct)
	}
	for i, k := range keys {
		if got, err := s.Open(ctx, k, k.Owner, "f", cts[i]); err != nil || string(got) != k.Owner {
			t.Errorf("owner %s: %q, %v", k.Owner, got, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	path := filepath.Join(f.TempDir(), "keyring.json")
	l, err := seal.OpenLocal(path)
	if err != nil {
		f.Fatal(err)
	}
	s := seal.New(l, 4)
	k, err := s.NewKey(ctx, "o", 1)
	if err != nil {
		f.Fatal(err)
	}
	ct, _ := s.Seal(ctx, k, "o", "f", []byte("hello"))
	f.Add(ct)
	f.Add(k.Wrapped)
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := s.Open(ctx, k, "o", "f", b); err == nil && !bytes.Equal(b, ct) {
			t.Fatalf("forged value opened: %q", got)
		}
		if got, err := l.Unwrap(ctx, b, []byte("mj-seal-owner-v1|o")); err == nil && !bytes.Equal(b, k.Wrapped) {
			t.Fatalf("forged wrapped key opened: %x", got)
		}
	})
}

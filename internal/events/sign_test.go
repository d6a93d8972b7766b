package events

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSigner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "events.key")
	s, err := LoadOrCreateSigningKey(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	again, err := LoadOrCreateSigningKey(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"id":"x"}`)
	sig := s.Sign(data)
	if err := again.Verify(data, sig); err != nil {
		t.Fatalf("the same key reloaded: %v", err)
	}
	other, _ := NewSigner([]byte(strings.Repeat("k", 32)))
	for _, tc := range []struct {
		name, sig string
		data      []byte
		want      error
	}{
		{"unsigned", "", data, ErrUnsigned},
		{"altered data", sig, []byte(`{"id":"y"}`), ErrBadSignature},
		{"other key", other.Sign(data), data, ErrBadSignature},
		{"no version", strings.TrimPrefix(sig, "v1="), data, ErrBadSignature},
		{"not base64", "v1=!!!", data, ErrBadSignature},
		{"truncated", sig[:len(sig)-2], data, ErrBadSignature},
	} {
		if err := s.Verify(tc.data, tc.sig); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := NewSigner(make([]byte, 31)); err == nil {
		t.Fatal("31-byte key accepted")
	}
	// Readable by others and read-only: refused (it cannot be tightened);
	// read-only for its group (a mounted Secret): read.
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSigningKey(context.Background(), path, nil); err == nil || !strings.Contains(err.Error(), "open to others") {
		t.Fatalf("world-readable key: %v", err)
	}
	if err := os.Chmod(path, 0o440); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSigningKey(context.Background(), path, nil); err != nil {
		t.Fatalf("a key mounted read-only for its group: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSigningKey(context.Background(), bad, nil); err == nil {
		t.Fatal("non-hex key accepted")
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := NewSigner([]byte(strings.Repeat("k", 32)))
	f.Add([]byte(`{}`), s.Sign([]byte(`{}`)))
	f.Add([]byte(`x`), "v1=")
	f.Fuzz(func(t *testing.T, data []byte, sig string) {
		err := s.Verify(data, sig)
		if err == nil && sig != s.Sign(data) {
			t.Fatalf("accepted %q for %q", sig, data)
		}
	})
}

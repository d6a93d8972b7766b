package app

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/events"
)

// The signing key: made in data_dir with the embedded NATS, required with
// nats_url by a process that signs or checks events, not loaded by one
// that does neither.
func TestEventSigner(t *testing.T) {
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	s, err := eventSigner(context.Background(), c)
	if err != nil || s == nil {
		t.Fatalf("embedded: %v, %v", s, err)
	}
	if fi, err := os.Stat(filepath.Join(c.DataDir, signingKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	c.NATSURL = "nats://127.0.0.1:4222"
	for _, roles := range [][]string{{"all"}, {RoleGame}, {RolePersistence}} {
		c.Roles = roles
		if _, err := eventSigner(context.Background(), c); err == nil || !strings.Contains(err.Error(), "events.signing_key_file") {
			t.Errorf("roles %v with nats_url and no key: %v; want an error naming events.signing_key_file", roles, err)
		}
	}
	c.Roles = []string{RoleGateway, RoleAuth}
	if s, err := eventSigner(context.Background(), c); err != nil || s != nil {
		t.Errorf("gateway: %v, %v; want no key", s, err)
	}
	c.Roles, c.Events.SigningKeyFile = []string{RoleGame}, filepath.Join(c.DataDir, signingKeyFile)
	if s, err := eventSigner(context.Background(), c); err != nil || s == nil {
		t.Errorf("game with a key file: %v, %v", s, err)
	}
	if got := busRoles([]string{"all"}); !slices.Equal(got, []string{events.RoleGateway, events.RoleGame, events.RolePersistence}) {
		t.Errorf("busRoles(all) = %v", got)
	}
}

// The default events signing key is made sealed by the key provider,
// found in clear it is sealed at start (the same key), and a sealed key
// does not open under another keyring. An explicit key file in clear is
// read and left as it is (other processes share it).
func TestEventSigningKeySealed(t *testing.T) {
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	path := filepath.Join(c.DataDir, signingKeyFile)
	s, err := eventSigner(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), "sealed:") {
		t.Fatalf("new key file: %q, %v; want it sealed", b, err)
	}
	again, err := eventSigner(context.Background(), c)
	if err != nil || again.Verify([]byte("x"), s.Sign([]byte("x"))) != nil {
		t.Fatalf("the sealed key reloaded: %v, or another key", err)
	}

	key := strings.Repeat("ab", 32)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = eventSigner(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(key)
	clear, _ := events.NewSigner(raw)
	if err := s.Verify([]byte("x"), clear.Sign([]byte("x"))); err != nil {
		t.Errorf("a clear key resealed: %v, want the same key", err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "sealed:") || strings.Contains(string(b), key) {
		t.Errorf("a clear key found at start: file %q, want it sealed", b)
	}

	other := c
	other.Seal.KeyringFile = filepath.Join(t.TempDir(), "other.kek")
	if _, err := eventSigner(context.Background(), other); err == nil {
		t.Error("a key sealed under another keyring opened")
	}

	explicit := filepath.Join(t.TempDir(), "events.key")
	if err := os.WriteFile(explicit, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.NATSURL, c.Events.SigningKeyFile = "nats://127.0.0.1:4222", explicit
	if s, err := eventSigner(context.Background(), c); err != nil || s.Verify([]byte("x"), clear.Sign([]byte("x"))) != nil {
		t.Errorf("an explicit clear key: %v", err)
	}
	if b, _ := os.ReadFile(explicit); string(b) != key+"\n" {
		t.Errorf("an explicit key file was rewritten: %q", b)
	}
}

// NATS credentials: one kind, for an external NATS only.
func TestEventsCredentialsConfig(t *testing.T) {
	for _, tc := range []struct {
		set  func(c *Config)
		want string
	}{
		{func(c *Config) { c.Events.User, c.Events.PasswordFile = "game", "/pw" }, "external NATS"},
		{func(c *Config) { c.NATSURL, c.Events.User = "nats://127.0.0.1:4222", "game" }, "events.password_file"},
		{func(c *Config) {
			c.NATSURL, c.Events.CredsFile, c.Events.NkeySeedFile = "nats://127.0.0.1:4222", "/c", "/n"
		}, "events.user"},
	} {
		c := DefaultConfig()
		tc.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want an error naming %s", c.Events, err, tc.want)
		}
	}
	c := DefaultConfig()
	c.NATSURL, c.Events.User, c.Events.PasswordFile = "nats://127.0.0.1:4222", "game", "/pw"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

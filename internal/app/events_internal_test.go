package app

import (
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
	s, err := eventSigner(c)
	if err != nil || s == nil {
		t.Fatalf("embedded: %v, %v", s, err)
	}
	if fi, err := os.Stat(filepath.Join(c.DataDir, signingKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	c.NATSURL = "nats://127.0.0.1:4222"
	for _, roles := range [][]string{{"all"}, {RoleGame}, {RolePersistence}} {
		c.Roles = roles
		if _, err := eventSigner(c); err == nil || !strings.Contains(err.Error(), "events.signing_key_file") {
			t.Errorf("roles %v with nats_url and no key: %v; want an error naming events.signing_key_file", roles, err)
		}
	}
	c.Roles = []string{RoleGateway, RoleAuth}
	if s, err := eventSigner(c); err != nil || s != nil {
		t.Errorf("gateway: %v, %v; want no key", s, err)
	}
	c.Roles, c.Events.SigningKeyFile = []string{RoleGame}, filepath.Join(c.DataDir, signingKeyFile)
	if s, err := eventSigner(c); err != nil || s == nil {
		t.Errorf("game with a key file: %v, %v", s, err)
	}
	if got := busRoles([]string{"all"}); !slices.Equal(got, []string{events.RoleGateway, events.RoleGame, events.RolePersistence}) {
		t.Errorf("busRoles(all) = %v", got)
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

package app

import (
	"fmt"
	"path/filepath"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/seal"
)

// SealConfig chooses the key provider that seals secrets at rest (the
// signing keys and the device-id secret today; personal data fields are
// issue 19's next step, docs/architecture.md "Not built yet").
type SealConfig struct {
	Provider    string `yaml:"provider" help:"key provider sealing secrets at rest: local (a keyring file; the only one built so far)"`
	KeyringFile string `yaml:"keyring_file" help:"local provider: the keyring file of key-encryption keys (mode 0600; default: keyring.kek in the keys dir, so nodes sharing that share it); keep it elsewhere for the keys dir alone to be useless to a thief"`
	// PersonalData and VaultURL: internal/app/personal.go.
	PersonalData bool   `yaml:"personal_data" help:"seal personal data (emails, client addresses in the audit log) under per-account data keys before it is stored; off stores it in clear (lookups by email use a keyed hash either way)"`
	VaultURL     string `yaml:"vault_url" secret:"true" help:"database of the per-account data keys (sqlite://PATH or postgres://...); default: vault.db in the keys dir on SQLite, the accounts database on PostgreSQL (then its backups hold the keys: give it a database of its own)"`
}

// Validate checks the seal settings.
func (s SealConfig) Validate(v *config.Validator, prefix string) {
	v.Check(s.Provider == "local", prefix+".provider", "must be local (the only provider built so far), got %q", s.Provider)
}

// KeyringFile is where the local provider's key-encryption keys live.
func (c Config) KeyringFile() string {
	if c.Seal.KeyringFile != "" {
		return c.Seal.KeyringFile
	}
	return filepath.Join(c.KeysDir(), "keyring.kek")
}

// openSeal opens the configured key provider.
func openSeal(c Config) (*seal.Local, error) {
	if c.Seal.Provider != "local" {
		return nil, fmt.Errorf("seal.provider %q is not built", c.Seal.Provider)
	}
	l, err := seal.OpenLocal(c.KeyringFile())
	if err != nil {
		return nil, fmt.Errorf("seal: open the keyring %s: %w", c.KeyringFile(), err)
	}
	return l, nil
}

// keysDir is the signing keys' directory with the provider that seals them.
func (c Config) keysDir() (auth.KeysDir, error) {
	p, err := openSeal(c)
	if err != nil {
		return auth.KeysDir{}, err
	}
	return auth.KeysDir{Path: c.KeysDir(), Seal: p}, nil
}

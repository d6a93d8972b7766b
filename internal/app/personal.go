package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store"
)

// dataKeysCached bounds the owners' data keys a node keeps unwrapped:
// about 1.1 KB each (the AES-GCM state and the wrapped key), so ~22 MB.
// A miss costs one vault read per login batch and an unwrap (~2 µs local).
const dataKeysCached = 20_000

// VaultURL is where owners' data keys live: seal.vault_url, else a SQLite
// file in the keys directory on the embedded default (the database's
// backups then hold no key), else the database itself (said at start:
// its backups then hold the keys too).
func (c Config) VaultURL() string {
	switch {
	case c.Seal.VaultURL != "":
		return c.Seal.VaultURL
	case strings.HasPrefix(c.DatabaseURL, "postgres"):
		return c.DatabaseURL
	}
	return "sqlite://" + filepath.Join(c.KeysDir(), "vault.db")
}

// protectStore makes st seal personal data (store/personal.go) with the
// keys dir's provider, the vault and the blind index key, and returns the
// vault (the caller closes it after st) and the Fields st seals with
// (personal match events use them too).
func protectStore(ctx context.Context, c Config, keys auth.KeysDir, st *store.Store, log *slog.Logger) (*store.Vault, *seal.Fields, error) {
	p, ok := keys.Seal.(seal.Provider)
	if !ok {
		return nil, nil, errors.New("seal: the key provider cannot wrap data keys")
	}
	idx, err := auth.BlindIndexKey(keys)
	if err != nil {
		return nil, nil, err
	}
	if c.Seal.VaultURL == "" && strings.HasPrefix(c.DatabaseURL, "postgres") && log != nil {
		log.Warn("data keys are kept in the accounts database: its backups hold them, so erasing an account does not reach them; set seal.vault_url to a database of its own")
	}
	v, err := store.OpenVault(ctx, store.Options{URL: c.VaultURL(), MaxOpenConns: c.Store.MaxOpenConns, BusyTimeout: c.Store.BusyTimeout})
	if err != nil {
		return nil, nil, fmt.Errorf("seal: open the data key vault: %w", err)
	}
	f := seal.NewFields(p, v, idx, c.Seal.PersonalData, dataKeysCached)
	st.SetProtector(f)
	return v, f, nil
}

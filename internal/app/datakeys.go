package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store"
)

// sealData is `multijuego keys seal-data`: it seals the personal data a
// database holds in clear (written before sealing, or with
// seal.personal_data off), batch by batch with progress. It is safe while
// servers run and resumable: stopped, it starts again where rows are left
// in clear. Auth nodes do the same at start.
func sealData(ctx context.Context, cfg Config, out io.Writer) error {
	if !cfg.Seal.PersonalData {
		return errors.New("seal.personal_data is off: nothing would be sealed")
	}
	ss, err := openSealedStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer ss.Close()
	s := ss.store
	n, err := auth.SealClear(ctx, s, func(total int) { fmt.Fprintf(out, "sealed %d rows...\n", total) })
	if err != nil {
		return fmt.Errorf("after %d rows: %w (run it again to go on)", n, err)
	}
	chained, err := s.ResealAudit(ctx, 500)
	if err != nil {
		return fmt.Errorf("after %d rows: %w (run it again to go on)", n, err)
	}
	fmt.Fprintf(out, "sealed %d rows and %d chained audit rows; no personal data is left in clear\n", n, chained)
	return nil
}

// rewrapDataKeys wraps every data key in the vault again under the
// provider's current key-encryption key, page by page with progress,
// while servers run (a key changed meanwhile is left as it is). Stopped,
// it starts again from the beginning and skips the keys already done.
func rewrapDataKeys(ctx context.Context, cfg Config, keys auth.KeysDir, out io.Writer) (int, error) {
	p, ok := keys.Seal.(seal.Provider)
	if !ok {
		return 0, errors.New("seal: the key provider cannot wrap data keys")
	}
	v, err := store.OpenVault(ctx, store.Options{URL: cfg.VaultURL()})
	if err != nil {
		return 0, err
	}
	defer v.Close()
	sealer := seal.New(p, 1)
	total, after := 0, ""
	for {
		next, n, err := v.Rewrap(ctx, after, 500, func(k seal.Key) (seal.Key, bool, error) { return sealer.Rewrap(ctx, k) })
		total += n
		if err != nil {
			return total, fmt.Errorf("rewrap data keys after %q: %w (run 'multijuego keys rewrap' again)", after, err)
		}
		if next == "" {
			return total, nil
		}
		after = next
		fmt.Fprintf(out, "data keys: %d rewrapped so far (at owner %s)\n", total, after)
	}
}

// reapplyErasures is `multijuego accounts reapply-erasures`: after the
// accounts database was restored from a backup, it deletes again the
// accounts erased since (those whose data key the vault holds a tombstone
// for), page by page with progress. Their personal fields were unreadable
// already; this removes the rows, the blind index of their email with them.
func reapplyErasures(ctx context.Context, cfg Config, out io.Writer) error {
	ss, err := openSealedStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer ss.Close()
	s, vault := ss.store, ss.vault
	total, seen, after := 0, 0, ""
	for {
		ids, err := vault.Erased(ctx, after, 500)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			fmt.Fprintf(out, "%d erased accounts known to the vault; %d were back in the database and are deleted again\n", seen, total)
			return nil
		}
		n, err := s.ReapplyErasures(ctx, ids)
		total += n
		if err != nil {
			return fmt.Errorf("after %d accounts: %w (run it again to go on)", total, err)
		}
		seen += len(ids)
		after = ids[len(ids)-1]
		if n > 0 {
			fmt.Fprintf(out, "deleted %d erased accounts again so far\n", total)
		}
	}
}

// resealBusSecrets seals the embedded event bus's secrets again under the
// provider's current key-encryption key: data_dir/events-signing.key and
// the embedded NATS users file, when they exist. An events.signing_key_file
// given by the operator is left as it is (several processes with their own
// keyrings may share it). It returns how many files it resealed.
func resealBusSecrets(ctx context.Context, cfg Config, w auth.Wrapper) (int, error) {
	n := 0
	if cfg.Events.SigningKeyFile == "" {
		ok, err := events.ResealSigningKey(ctx, filepath.Join(cfg.DataDir, signingKeyFile), auth.LineSealer{W: w, AAD: signingKeyAAD})
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	ok, err := events.ResealUsers(ctx, cfg.DataDir, auth.LineSealer{W: w, AAD: natsUsersAAD})
	if ok {
		n++
	}
	return n, err
}

// sealedStore is the migrated store of a CLI command that reads or writes
// accounts, sealing personal data as a node does, with what it opened.
type sealedStore struct {
	store    *store.Store
	keys     auth.KeysDir
	vault    *store.Vault
	provider keyProvider
}

// openSealedStore opens the migrated store, the keys directory's provider
// and the vault, and sets the store's protector.
func openSealedStore(ctx context.Context, cfg Config) (*sealedStore, error) {
	s, err := openMigratedStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	keys, provider, err := cfg.keysDir(ctx, nil)
	if err != nil {
		s.Close()
		return nil, err
	}
	vault, _, err := protectStore(ctx, cfg, keys, s, nil)
	if err != nil {
		provider.Close()
		s.Close()
		return nil, err
	}
	return &sealedStore{store: s, keys: keys, vault: vault, provider: provider}, nil
}

// Close closes the vault, the store and the provider.
func (ss *sealedStore) Close() error {
	return errors.Join(ss.vault.Close(), ss.store.Close(), ss.provider.Close())
}

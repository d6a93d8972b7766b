package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/multijuego/multijuego/internal/seal"
)

// Vault holds owners' wrapped data keys (seal.Vault) in a database of its
// own: on the embedded default a SQLite file in the keys directory, at
// scale a PostgreSQL database named by seal.vault_url. The accounts'
// database and its backups then hold ciphertexts but no key, and deleting
// an owner's key makes its personal data in every copy unreadable.
type Vault struct {
	s *Store
}

const vaultSchema = `CREATE TABLE IF NOT EXISTS data_keys (
	owner      TEXT PRIMARY KEY,
	key_id     BIGINT NOT NULL,
	wrapped    TEXT NOT NULL,
	created_at BIGINT NOT NULL
)`

// OpenVault opens (and creates the table of) the vault named by o.
func OpenVault(ctx context.Context, o Options) (*Vault, error) {
	s, err := Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, vaultSchema); err != nil {
		s.Close()
		return nil, fmt.Errorf("vault: create data_keys: %w", err)
	}
	return &Vault{s: s}, nil
}

// Close closes the vault's database.
func (v *Vault) Close() error { return v.s.Close() }

// Ping checks that the vault's database answers.
func (v *Vault) Ping(ctx context.Context) error { return v.s.Ping(ctx) }

// Keys returns the keys of those owners that have one; a destroyed key
// comes back with no Wrapped bytes (a tombstone).
func (v *Vault) Keys(ctx context.Context, owners []string) (map[string]seal.Key, error) {
	out := make(map[string]seal.Key, len(owners))
	const per = 500
	for len(owners) > 0 {
		n := min(len(owners), per)
		args := make([]any, n)
		for i, o := range owners[:n] {
			args[i] = o
		}
		owners = owners[n:]
		rows, err := v.s.r.QueryContext(ctx, `SELECT owner, key_id, wrapped FROM data_keys WHERE owner IN (`+v.s.placeholders(0, n)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k seal.Key
			var wrapped string
			if err := rows.Scan(&k.Owner, &k.ID, &wrapped); err != nil {
				rows.Close()
				return nil, err
			}
			if k.Wrapped, err = decodeWrapped(wrapped); err != nil {
				rows.Close()
				return nil, fmt.Errorf("vault: key of %q: %w", k.Owner, err)
			}
			out[k.Owner] = k
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AddKeys stores the keys of owners that have none, in one transaction,
// and returns how many it stored; an owner that already has a key (or a
// tombstone) keeps it.
func (v *Vault) AddKeys(ctx context.Context, keys []seal.Key) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	now := time.Now().UnixMicro()
	args := make([]any, 0, 4*len(keys))
	for _, k := range keys {
		args = append(args, k.Owner, int64(k.ID), encodeWrapped(k.Wrapped), now)
	}
	// Prepared multi-row statements of a few sizes (insertChunks), as the
	// login batches use: a batch's keys cost no statement parsing.
	chunks, err := v.s.insertChunks(ctx, nil, `INSERT INTO data_keys (owner, key_id, wrapped, created_at) VALUES `,
		` ON CONFLICT (owner) DO NOTHING`, 4, args)
	if err != nil {
		return 0, err
	}
	n := 0
	err = v.s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range chunks {
			res, err := tx.StmtContext(ctx, c.st).ExecContext(ctx, c.args...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	return n, err
}

// DeleteKey destroys owner's key, leaving a tombstone (an empty wrapped
// key) so that no new key is made for the owner afterwards.
func (v *Vault) DeleteKey(ctx context.Context, owner string) error {
	_, err := v.s.w.ExecContext(ctx, `INSERT INTO data_keys (owner, key_id, wrapped, created_at) VALUES ($1, 0, '', $2)
		ON CONFLICT (owner) DO UPDATE SET key_id=0, wrapped=''`, owner, time.Now().UnixMicro())
	return err
}

// Rewrap wraps every key again with wrap (the provider's current KEK),
// in pages of batch keys after the owner after, and returns the last owner
// seen ("" when done) and how many keys it changed. A caller loops until
// done; it may stop and start again from the owner it was given.
func (v *Vault) Rewrap(ctx context.Context, after string, batch int, wrap func(seal.Key) (seal.Key, bool, error)) (string, int, error) {
	rows, err := v.s.r.QueryContext(ctx, `SELECT owner, key_id, wrapped FROM data_keys WHERE owner > $1 AND wrapped <> '' ORDER BY owner LIMIT $2`, after, batch)
	if err != nil {
		return after, 0, err
	}
	var page []seal.Key
	for rows.Next() {
		var k seal.Key
		var wrapped string
		if err := rows.Scan(&k.Owner, &k.ID, &wrapped); err != nil {
			rows.Close()
			return after, 0, err
		}
		if k.Wrapped, err = decodeWrapped(wrapped); err != nil {
			rows.Close()
			return after, 0, fmt.Errorf("vault: key of %q: %w", k.Owner, err)
		}
		page = append(page, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return after, 0, err
	}
	if len(page) == 0 {
		return "", 0, nil
	}
	changed := 0
	for _, k := range page {
		nk, ok, err := wrap(k)
		if err != nil {
			return after, changed, err
		}
		if ok {
			// Only if nobody destroyed or replaced it meanwhile.
			if _, err := v.s.w.ExecContext(ctx, `UPDATE data_keys SET wrapped=$1 WHERE owner=$2 AND wrapped=$3`,
				encodeWrapped(nk.Wrapped), k.Owner, encodeWrapped(k.Wrapped)); err != nil {
				return after, changed, err
			}
			changed++
		}
		after = k.Owner
	}
	return after, changed, nil
}

func encodeWrapped(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func decodeWrapped(s string) ([]byte, error) {
	if s == "" {
		return nil, nil // a tombstone
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Erased returns up to limit owners after after (in owner order) whose
// key was destroyed: the accounts erased since the vault began.
func (v *Vault) Erased(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := v.s.r.QueryContext(ctx, `SELECT owner FROM data_keys WHERE wrapped = '' AND owner > $1 ORDER BY owner LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

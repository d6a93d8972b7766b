package store

import (
	"context"
	"database/sql"
)

// DeleteAccount erases an account: its row, its devices, its linked
// external identities and its sessions (refresh families and tokens), in
// one transaction. Match results, stats and leaderboard records stay under
// the account id, which then names nobody; audit rows stay (the audit log
// is append-only), their addresses sealed under the account's data key,
// which goes first (personal.go): from then on nothing sealed for the
// account opens, in this database or any copy of it. ErrNotFound when
// there is no such account (its key, if any, destroyed all the same).
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	if err := s.eraseKey(ctx, id); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM account_identities WHERE account_id=$1`,
			`DELETE FROM account_devices WHERE account_id=$1`,
			`DELETE FROM refresh_tokens WHERE account_id=$1`,
			`DELETE FROM refresh_families WHERE account_id=$1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE id=$1`, id)
		if err != nil {
			return err
		}
		return affectedOne(res)
	})
}

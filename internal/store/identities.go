package store

import (
	"context"
	"time"
)

// Identity links an external identity, the subject an OpenID Connect
// issuer vouches for, to an account.
type Identity struct {
	Issuer    string // the iss claim
	Subject   string // the sub claim
	AccountID string
	CreatedAt time.Time
}

const identityCols = `issuer, subject, account_id, created_at`

// LinkIdentity stores id. An (issuer, subject) already linked, to this
// account or another, is a *ConflictError on field "identity".
func (s *Store) LinkIdentity(ctx context.Context, id Identity) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO account_identities (`+identityCols+`) VALUES ($1,$2,$3,$4)`,
		id.Issuer, id.Subject, id.AccountID, s.d.time(id.CreatedAt))
	return s.d.conflict(err)
}

// UnlinkIdentity removes the link of (issuer, subject) to accountID;
// ErrNotFound when the account has no such link.
func (s *Store) UnlinkIdentity(ctx context.Context, accountID, issuer, subject string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM account_identities WHERE issuer=$1 AND subject=$2 AND account_id=$3`,
		issuer, subject, accountID)
	if err != nil {
		return err
	}
	return affectedOne(res)
}

// AccountByIdentity returns the account (issuer, subject) is linked to.
// Devices is not filled.
func (s *Store) AccountByIdentity(ctx context.Context, issuer, subject string) (Account, error) {
	st, err := s.prepared(ctx, s.r, `SELECT `+prefixed("a.", accountCols)+
		` FROM account_identities i JOIN accounts a ON a.id=i.account_id WHERE i.issuer=$1 AND i.subject=$2`)
	if err != nil {
		return Account{}, err
	}
	return s.scanAccount(ctx, st.QueryRowContext(ctx, issuer, subject))
}

// Identities lists the identities linked to an account, oldest first.
func (s *Store) Identities(ctx context.Context, accountID string) ([]Identity, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+identityCols+` FROM account_identities WHERE account_id=$1
		ORDER BY created_at, issuer, subject`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Identity
	for rows.Next() {
		var id Identity
		var at dbTime
		if err := rows.Scan(&id.Issuer, &id.Subject, &id.AccountID, &at); err != nil {
			return nil, err
		}
		id.CreatedAt = at.T
		out = append(out, id)
	}
	return out, rows.Err()
}

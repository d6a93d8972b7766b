package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// Logins: what a login writes (a new guest account with its device, a
// refresh family with its first token, audit events), for many logins in
// one transaction. The auth service groups concurrent logins into one call
// (group commit), so a storm of logins costs one commit per batch, not two
// or three per login.

// LoginWrite is the rows of one login. Every part is optional.
type LoginWrite struct {
	// Account, when its ID is set, is created first, with Device linked
	// to it when Device is not empty (a device's first login).
	Account Account
	Device  string
	// Family, when its ID is set, is created with Token as its first
	// token (the session).
	Family RefreshFamily
	Token  RefreshToken
	Audit  []AuditEvent
}

// WriteLogins writes every login's rows in one transaction: all of them or,
// on any error, none. The error is the first statement's that failed; a
// unique violation is a *ConflictError, but in a batch of several logins it
// does not say whose: write the logins one by one to tell.
func (s *Store) WriteLogins(ctx context.Context, ws []LoginWrite) error {
	if len(ws) == 0 {
		return nil
	}
	var accounts, devices, families, tokens, audit []any
	for _, w := range ws {
		if a := w.Account; a.ID != "" {
			accounts = append(accounts, a.ID, a.Username, nullString(a.Email), nullString(a.PasswordHash), strings.Join(a.Roles, ","),
				s.d.nullTime(a.BannedAt), a.BanReason, s.d.nullTime(a.RevokedBefore), s.d.time(a.CreatedAt), s.d.time(a.UpdatedAt))
			if w.Device != "" {
				devices = append(devices, w.Device, a.ID, s.d.time(a.CreatedAt))
			}
		}
		if f := w.Family; f.ID != "" {
			families = append(families, f.ID, f.AccountID, s.d.time(f.CreatedAt), s.d.time(f.ExpiresAt))
			t := w.Token
			tokens = append(tokens, t.Hash, t.FamilyID, t.AccountID, s.d.time(t.CreatedAt), s.d.time(t.ExpiresAt))
		}
		for _, e := range w.Audit {
			audit = append(audit, s.d.time(e.At), e.Kind, nullString(e.AccountID), nullString(e.ActorID), e.IP, e.Detail)
		}
	}
	// Parents first: devices and families refer to accounts, tokens to
	// families.
	inserts := []struct {
		head string
		cols int
		args []any
	}{
		{`INSERT INTO accounts (` + accountCols + `) VALUES `, 10, accounts},
		{`INSERT INTO account_devices (device_id, account_id, created_at) VALUES `, 3, devices},
		{`INSERT INTO refresh_families (id, account_id, created_at, expires_at) VALUES `, 4, families},
		{`INSERT INTO refresh_tokens (token_hash, family_id, account_id, created_at, expires_at) VALUES `, 5, tokens},
		{`INSERT INTO audit_log (at, kind, account_id, actor_id, ip, detail) VALUES `, 6, audit},
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, in := range inserts {
			if err := s.execValues(ctx, tx, in.head, "", in.cols, in.args, nil); err != nil {
				return s.d.conflict(err)
			}
		}
		return nil
	})
}

// AccountByDeviceIDs returns the account linked to the first of ids that is
// stored, and that id, in one query: the auth service looks a device up by
// its keyed hash and by the id in clear (a database written before hashing)
// at once. Devices is not filled.
func (s *Store) AccountByDeviceIDs(ctx context.Context, ids ...string) (Account, string, error) {
	if len(ids) == 0 {
		return Account{}, "", ErrNotFound
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := `SELECT d.device_id, ` + prefixed("a.", accountCols) +
		` FROM account_devices d JOIN accounts a ON a.id=d.account_id WHERE d.device_id IN (` + s.inList(len(ids)) + `)`
	var rows *sql.Rows
	var err error
	if len(ids) <= maxPreparedIDs {
		var st *sql.Stmt
		if st, err = s.readStmt(ctx, q); err == nil {
			rows, err = st.QueryContext(ctx, args...)
		}
	} else {
		rows, err = s.r.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return Account{}, "", err
	}
	defer rows.Close()
	found := map[string]Account{}
	for rows.Next() {
		var id string
		a, err := s.scanAccount(prefixedScanner{rows, &id})
		if err != nil {
			return Account{}, "", err
		}
		found[id] = a
	}
	if err := rows.Err(); err != nil {
		return Account{}, "", err
	}
	for _, id := range ids {
		if a, ok := found[id]; ok {
			return a, id, nil
		}
	}
	return Account{}, "", ErrNotFound
}

// maxPreparedIDs bounds the lists AccountByDeviceIDs prepares a statement
// for (one per length), so callers cannot grow the statement cache.
const maxPreparedIDs = 4

// readStmt returns query prepared on the read pool, preparing it the first
// time. Every login looks its device up; SQLite parses every query text it
// is given, and the parse was a third of the lookup's CPU (pgx caches its
// own statements per connection). Only fixed query texts come here, so the
// cache is bounded.
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if v, ok := s.stmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := s.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// prefixedScanner scans one leading column into first, then the rest as
// the wrapped row would.
type prefixedScanner struct {
	row   *sql.Rows
	first *string
}

func (p prefixedScanner) Scan(dest ...any) error {
	err := p.row.Scan(append([]any{p.first}, dest...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

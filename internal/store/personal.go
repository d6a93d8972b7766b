package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/multijuego/multijuego/internal/seal"
)

// Personal data: the fields that identify a person (an account's email,
// the client addresses in the audit log) are sealed before they reach the
// database, under the data key of the account they belong to, by the
// Protector a process sets (internal/seal.Fields). Lookups by email use a
// blind index column, never the plaintext. Erasing an account destroys its
// data key, so what was sealed for it stays unreadable in every copy of
// the database (crypto-shredding).
//
// What each sealed value is bound to (the record and field given to Seal),
// so that a ciphertext copied into another row does not open:
//
//	accounts.email   record "account:<id>"                      field "email"
//	audit_log.ip     record "audit:<owner>:<kind>:<at, unix µs>" field "ip"
//
// An audit row's owner is its account, or auditOwner for rows that name
// none (a failed login for an unknown email, a rate-limit trip).

// Protector seals personal fields and computes blind indexes.
type Protector interface {
	// Index is the blind index of a normalised value of field.
	Index(field, value string) string
	// Prepare makes sure each owner has a data key, in one write; the
	// owners in created are new accounts, known to have none.
	Prepare(ctx context.Context, owners, created []string) error
	// Seal returns the text to store for plain.
	Seal(ctx context.Context, owner, record, field, plain string) (string, error)
	// Open returns the plaintext of a stored value (one stored in clear
	// as it is); an error wrapping seal.ErrErased when the owner's key was
	// destroyed.
	Open(ctx context.Context, owner, record, field, stored string) (string, error)
	// Destroy destroys owner's data key.
	Destroy(ctx context.Context, owner string) error
}

// auditOwner owns the addresses of audit rows that name no account.
const auditOwner = "audit"

// SetProtector makes s seal personal fields with p. A process that writes
// accounts or the audit log sets one before using s; without one, fields
// are written in clear and sealed values read back as empty.
func (s *Store) SetProtector(p Protector) { s.prot = p }

func emailRecord(id string) string { return "account:" + id }

func auditRecord(owner, kind string, atMicro int64) string {
	return "audit:" + owner + ":" + kind + ":" + strconv.FormatInt(atMicro, 10)
}

func auditOwnerOf(e AuditEvent) string {
	if e.AccountID != "" {
		return e.AccountID
	}
	return auditOwner
}

// emailIndex is the blind index of a normalised email (NULL when there is
// none). Without a protector it is the email in clear after clearIndex, so
// uniqueness and lookups hold either way, and SealClear knows what to
// convert.
func (s *Store) emailIndex(email string) any {
	if email == "" {
		return nil
	}
	if s.prot == nil {
		return clearIndex + email
	}
	return s.prot.Index("email", email)
}

// clearIndex starts the email index of a row written without a protector.
const clearIndex = "clear:"

// sealEmail returns the email column's value for a.
func (s *Store) sealEmail(ctx context.Context, a Account) (any, error) {
	if a.Email == "" || s.prot == nil {
		return nullString(a.Email), nil
	}
	v, err := s.prot.Seal(ctx, a.ID, emailRecord(a.ID), "email", a.Email)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// openEmail is the plaintext of a stored email: empty when erased or when
// it is sealed and s has no protector.
func (s *Store) openEmail(ctx context.Context, id, stored string) (string, error) {
	return s.open(ctx, id, emailRecord(id), "email", stored)
}

// sealIP returns the ip column's value for e: sealed, or empty when e's
// account was erased (its erasure's own audit row keeps no address).
func (s *Store) sealIP(ctx context.Context, e AuditEvent) (string, error) {
	if e.IP == "" || s.prot == nil {
		return e.IP, nil
	}
	owner := auditOwnerOf(e)
	v, err := s.prot.Seal(ctx, owner, auditRecord(owner, e.Kind, e.At.UnixMicro()), "ip", e.IP)
	if errors.Is(err, seal.ErrErased) {
		return "", nil
	}
	return v, err
}

func (s *Store) openIP(ctx context.Context, e AuditEvent) (string, error) {
	owner := auditOwnerOf(e)
	return s.open(ctx, owner, auditRecord(owner, e.Kind, e.At.UnixMicro()), "ip", e.IP)
}

func (s *Store) open(ctx context.Context, owner, record, field, stored string) (string, error) {
	if !seal.IsSealed(stored) {
		return stored, nil
	}
	if s.prot == nil {
		return "", nil
	}
	v, err := s.prot.Open(ctx, owner, record, field, stored)
	if errors.Is(err, seal.ErrErased) {
		return "", nil
	}
	return v, err
}

// prepareOwners makes sure the owners of the personal fields in ws have
// data keys, in one write to the vault, before they are sealed one by one.
func (s *Store) prepareOwners(ctx context.Context, ws []LoginWrite) error {
	if s.prot == nil {
		return nil
	}
	var owners, created []string
	for _, w := range ws {
		fresh := w.Account.ID != ""
		if fresh && w.Account.Email != "" {
			created = append(created, w.Account.ID)
		}
		for _, e := range w.Audit {
			switch o := auditOwnerOf(e); {
			case e.IP == "":
			case fresh && o == w.Account.ID:
				created = append(created, o)
			default:
				owners = append(owners, o)
			}
		}
	}
	return s.prot.Prepare(ctx, owners, created)
}

// eraseKey destroys an account's data key.
func (s *Store) eraseKey(ctx context.Context, id string) error {
	if s.prot == nil {
		return nil
	}
	return s.prot.Destroy(ctx, id)
}

// SealClear seals up to limit personal fields that rows written before
// sealing was on hold in clear: emails (and their blind index), then the
// addresses of audit rows the chain has not reached yet (ResealAudit
// handles chained ones). It returns how many rows it changed: 0 when none
// is left (or s has no protector). Safe to run on several nodes at once
// and to stop at any point.
func (s *Store) SealClear(ctx context.Context, limit int) (int, error) {
	if s.prot == nil {
		return 0, nil
	}
	n, err := s.sealClearEmails(ctx, limit)
	if err != nil || n > 0 {
		return n, err
	}
	return s.sealClearIPs(ctx, limit)
}

func (s *Store) sealClearEmails(ctx context.Context, limit int) (int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, email FROM accounts WHERE (email_index IS NULL OR email_index LIKE 'clear:%') AND email IS NOT NULL
		ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return 0, err
	}
	var accs []Account
	for rows.Next() {
		var a Account
		if err := rows.Scan(&a.ID, &a.Email); err != nil {
			rows.Close()
			return 0, err
		}
		accs = append(accs, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(accs) == 0 {
		return 0, err
	}
	n := 0
	for _, a := range accs {
		if seal.IsSealed(a.Email) {
			continue // sealed, its index lost: nothing to index it by
		}
		email, err := s.sealEmail(ctx, a)
		if err != nil {
			return n, err
		}
		res, err := s.w.ExecContext(ctx, `UPDATE accounts SET email=$2, email_index=$3 WHERE id=$1 AND email=$4`,
			a.ID, email, s.emailIndex(a.Email), a.Email)
		if err != nil {
			return n, s.d.conflict(err)
		}
		if c, _ := res.RowsAffected(); c > 0 {
			n++
		}
	}
	return n, nil
}

func (s *Store) sealClearIPs(ctx context.Context, limit int) (int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, at, kind, account_id, ip FROM audit_log
		WHERE chain_seq IS NULL AND ip <> '' AND ip NOT LIKE 'sealed:%' ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return 0, err
	}
	var evs []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at dbTime
		var acc sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.Kind, &acc, &e.IP); err != nil {
			rows.Close()
			return 0, err
		}
		e.At, e.AccountID = at.T, acc.String
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range evs {
		ip, err := s.sealIP(ctx, e)
		if err != nil {
			return n, err
		}
		// A row the chainer reached meanwhile is left to ResealAudit.
		res, err := s.w.ExecContext(ctx, `UPDATE audit_log SET ip=$2 WHERE id=$1 AND chain_seq IS NULL AND ip=$3`, e.ID, ip, e.IP)
		if err != nil {
			return n, err
		}
		if c, _ := res.RowsAffected(); c > 0 {
			n++
		}
	}
	return n, nil
}

// ReapplyErasures deletes the accounts among ids that exist (erased
// accounts a restored backup brought back: their data keys are gone from
// the vault) and returns how many it deleted.
func (s *Store) ReapplyErasures(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM accounts WHERE id IN (`+s.placeholders(0, len(ids))+`)`, args...)
	if err != nil {
		return 0, err
	}
	var back []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		back = append(back, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range back {
		if err := s.DeleteAccount(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// Package store is multijuego's relational store: accounts, devices,
// refresh-token families, token revocations, the security audit log, and
// match results with the player stats and leaderboards derived from them
// (matches.go, leaderboards.go).
//
// One implementation serves two engines through database/sql: SQLite
// (modernc.org/sqlite, pure Go, WAL, one writer connection and a read pool)
// for the embedded default, and PostgreSQL (pgx) at scale. Both accept the
// same $N placeholders and RETURNING, so the SQL is shared; the differences
// (time columns, identity columns, error codes) are confined to dialect.go
// and to the two migration sets, which a test keeps in lockstep. The
// conformance suite in storetest runs against both.
//
// The store holds no business rules: it stores and fetches atomically. The
// auth service decides what a reused refresh token or a ban means.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned when the requested row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrBanned is returned by WriteLogins when a login's account is banned
// by the time its rows would commit: none is written.
var ErrBanned = errors.New("store: the account is banned")

// ErrTokenUsed is returned by ConsumeRefreshToken when the token was
// already used; the token and its family are returned with it.
var ErrTokenUsed = errors.New("store: refresh token already used")

// ConflictError reports a unique value that is already taken.
type ConflictError struct {
	Field string // "username", "email", "device_id" or "id"
}

func (e *ConflictError) Error() string { return "store: " + e.Field + " already taken" }

// Account is a player, admin or service identity.
type Account struct {
	ID            string
	Username      string
	Email         string // normalised lower case; empty when none
	PasswordHash  string // PHC string; empty for device-only (guest) accounts
	Roles         []string
	BannedAt      time.Time // zero when not banned
	BanReason     string
	RevokedBefore time.Time // access tokens issued at or before this are void; zero when none
	Devices       []string  // stored device ids (the auth service's keyed hashes); filled by the single-account lookups
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Banned reports whether the account is banned.
func (a Account) Banned() bool { return !a.BannedAt.IsZero() }

// RefreshFamily is the chain of refresh tokens born from one login.
type RefreshFamily struct {
	ID           string
	AccountID    string
	CreatedAt    time.Time
	ExpiresAt    time.Time // absolute end of the session, whatever the rotations
	RevokedAt    time.Time // zero when live
	RevokeReason string
}

// Revoked reports whether the family was revoked.
func (f RefreshFamily) Revoked() bool { return !f.RevokedAt.IsZero() }

// RefreshToken is one single-use refresh token, stored by hash only.
type RefreshToken struct {
	Hash      string // hex SHA-256 of the opaque token
	FamilyID  string
	AccountID string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero when unused
}

// Revocation kinds.
const (
	RevokeToken   = "jti"     // Subject is an access token's jti
	RevokeAccount = "account" // Subject is an account id; tokens issued at or before Cutoff are void
	RevokeSession = "sid"     // Subject is a refresh family id; every access token issued with it is void
)

// Revocation denies access tokens until ExpiresAt, after which the tokens it
// covers have expired anyway.
type Revocation struct {
	Seq       int64
	Kind      string
	Subject   string
	Cutoff    time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuditEvent is one security event.
type AuditEvent struct {
	ID        int64
	At        time.Time
	Kind      string // login_ok, login_fail, token_reuse, password_change, ban, ...
	AccountID string
	ActorID   string // who did it, when not the account itself (an admin)
	IP        string
	Detail    string
	ChainSeq  int64 // the row's place in the hash chain (auditchain.go); 0 until chained
}

// AccountQuery pages through accounts ordered by id.
type AccountQuery struct {
	Search string // case-insensitive prefix of username or email
	After  string // the last id of the previous page
	Limit  int
}

// AuditQuery pages through the audit log, newest first.
type AuditQuery struct {
	AccountID string
	Kind      string
	Before    int64 // the smallest id of the previous page; 0 for the first page
	Limit     int
}

// Store is the relational store. It is safe for concurrent use.
type Store struct {
	d  dialect
	w  *sql.DB // writes (SQLite: the single writer connection)
	r  *sql.DB // reads (SQLite: a read-only pool; PostgreSQL: same as w)
	dn string
	// file is the SQLite database file ("" on PostgreSQL), for BackupTo.
	file string
	// stmts holds the statements of the login path prepared once
	// (prepared), by stmtKey.
	stmts sync.Map
	// prot seals personal fields (personal.go); nil: in clear.
	prot Protector
	// stopCheckpoints stops SQLite's checkpoints (checkpoint.go); nil on
	// PostgreSQL.
	stopCheckpoints func() error
	// rewind is set by SQLite's checkpoints when the writer should rewind
	// the WAL before its next transaction (checkpoint.go).
	rewind atomic.Bool
}

// Dialect names the engine: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dn }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return err
	}
	if s.r != s.w {
		return s.r.PingContext(ctx)
	}
	return nil
}

// Close stops the checkpoints and closes the prepared statements and the
// connection pools.
func (s *Store) Close() error {
	var err error
	if s.stopCheckpoints != nil {
		err = s.stopCheckpoints()
	}
	s.stmts.Range(func(_, v any) bool {
		err = errors.Join(err, v.(*sql.Stmt).Close())
		return true
	})
	err = errors.Join(err, s.w.Close())
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

const accountCols = `id, username, email, password_hash, roles, banned_at, ban_reason, revoked_before, created_at, updated_at`

// accountInsertCols are accountCols and the email's blind index.
const accountInsertCols = accountCols + `, email_index`

// accountRow is the values of accountInsertCols for a, its email sealed.
func (s *Store) accountRow(ctx context.Context, a Account) ([]any, error) {
	email, err := s.sealEmail(ctx, a)
	if err != nil {
		return nil, err
	}
	return []any{a.ID, a.Username, email, nullString(a.PasswordHash), strings.Join(a.Roles, ","),
		s.d.nullTime(a.BannedAt), a.BanReason, s.d.nullTime(a.RevokedBefore), s.d.time(a.CreatedAt), s.d.time(a.UpdatedAt),
		s.emailIndex(a.Email)}, nil
}

func (s *Store) scanAccount(ctx context.Context, row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var email, hash sql.NullString
	var roles string
	var banned, revoked, created, updated dbTime
	if err := row.Scan(&a.ID, &a.Username, &email, &hash, &roles, &banned, &a.BanReason, &revoked, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Account{}, ErrNotFound
		}
		return Account{}, err
	}
	a.PasswordHash = hash.String
	var err error
	if a.Email, err = s.openEmail(ctx, a.ID, email.String); err != nil {
		return Account{}, err
	}
	a.Roles = splitRoles(roles)
	a.BannedAt, a.RevokedBefore, a.CreatedAt, a.UpdatedAt = banned.T, revoked.T, created.T, updated.T
	return a, nil
}

func splitRoles(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateAccount inserts a; when deviceID is not empty the device is linked in
// the same transaction.
func (s *Store) CreateAccount(ctx context.Context, a Account, deviceID string) error {
	row, err := s.accountRow(ctx, a)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountInsertCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`, row...)
		if err != nil {
			return s.d.conflict(err)
		}
		if deviceID != "" {
			_, err = tx.ExecContext(ctx, `INSERT INTO account_devices (device_id, account_id, created_at) VALUES ($1,$2,$3)`,
				deviceID, a.ID, s.d.time(a.CreatedAt))
			return s.d.conflict(err)
		}
		return nil
	})
}

// UpdateAccount writes every mutable field of a (all but id and created_at).
func (s *Store) UpdateAccount(ctx context.Context, a Account) error {
	email, err := s.sealEmail(ctx, a)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE accounts SET username=$2, email=$3, password_hash=$4, roles=$5,
		banned_at=$6, ban_reason=$7, revoked_before=$8, updated_at=$9, email_index=$10 WHERE id=$1`,
		a.ID, a.Username, email, nullString(a.PasswordHash), strings.Join(a.Roles, ","),
		s.d.nullTime(a.BannedAt), a.BanReason, s.d.nullTime(a.RevokedBefore), s.d.time(a.UpdatedAt), s.emailIndex(a.Email))
	if err != nil {
		return s.d.conflict(err)
	}
	return affectedOne(res)
}

func affectedOne(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// AccountByID returns the account with its devices.
func (s *Store) AccountByID(ctx context.Context, id string) (Account, error) {
	return s.account(ctx, `SELECT `+accountCols+` FROM accounts WHERE id=$1`, id)
}

// AccountByUsername looks the username up case-insensitively.
func (s *Store) AccountByUsername(ctx context.Context, username string) (Account, error) {
	return s.account(ctx, `SELECT `+accountCols+` FROM accounts WHERE lower(username)=lower($1)`, username)
}

// AccountByEmail looks up a normalised (lower-case) email by its blind
// index, then among rows that hold it in clear (personal.go: written
// without a protector, or before migration 0006).
func (s *Store) AccountByEmail(ctx context.Context, email string) (Account, error) {
	const q = `SELECT ` + accountCols + ` FROM accounts WHERE `
	if s.prot != nil {
		a, err := s.account(ctx, q+`email_index=$1`, s.emailIndex(email).(string))
		if !errors.Is(err, ErrNotFound) {
			return a, err
		}
	}
	a, err := s.account(ctx, q+`email_index=$1`, clearIndex+email)
	if !errors.Is(err, ErrNotFound) {
		return a, err
	}
	return s.account(ctx, q+`email_index IS NULL AND email=$1`, email)
}

// RekeyDevice replaces a device's stored id (the auth service's move from
// ids in clear to keyed hashes). A device already rekeyed (by another node)
// is not an error; when the new id is already stored, the old row goes.
func (s *Store) RekeyDevice(ctx context.Context, oldID, newID string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE account_devices SET device_id=$2 WHERE device_id=$1`, oldID, newID)
	var ce *ConflictError
	if errors.As(s.d.conflict(err), &ce) {
		_, err = s.w.ExecContext(ctx, `DELETE FROM account_devices WHERE device_id=$1`, oldID)
	}
	return err
}

// ClearDevices returns up to limit stored device ids after after (in
// id order) that do not start with hashedPrefix: ids a database written
// before device-id hashing holds in clear.
func (s *Store) ClearDevices(ctx context.Context, hashedPrefix, after string, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT device_id FROM account_devices WHERE device_id NOT LIKE $1 ESCAPE '\' AND device_id > $2
		ORDER BY device_id LIMIT $3`, escapeLike(hashedPrefix)+"%", after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

func (s *Store) account(ctx context.Context, query string, arg string) (Account, error) {
	a, err := s.scanAccount(ctx, s.r.QueryRowContext(ctx, query, arg))
	if err != nil {
		return Account{}, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT device_id FROM account_devices WHERE account_id=$1 ORDER BY created_at, device_id`, a.ID)
	if err != nil {
		return Account{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return Account{}, err
		}
		a.Devices = append(a.Devices, d)
	}
	return a, rows.Err()
}

// ListAccounts pages through accounts by id. Devices are not filled.
func (s *Store) ListAccounts(ctx context.Context, q AccountQuery) ([]Account, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	var conds []string
	var args []any
	if q.Search != "" {
		// Usernames by prefix; emails are sealed, so only a whole email
		// matches (by its blind index).
		search := strings.ToLower(strings.TrimSpace(q.Search))
		args = append(args, escapeLike(search)+"%")
		cond := fmt.Sprintf(`lower(username) LIKE $%d ESCAPE '\'`, len(args))
		args = append(args, s.emailIndex(search), clearIndex+search, search)
		cond += fmt.Sprintf(` OR email_index IN ($%d, $%d) OR (email_index IS NULL AND email=$%d)`, len(args)-2, len(args)-1, len(args))
		conds = append(conds, "("+cond+")")
	}
	if q.After != "" {
		args = append(args, q.After)
		conds = append(conds, fmt.Sprintf("id > $%d", len(args)))
	}
	query := `SELECT ` + accountCols + ` FROM accounts`
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	args = append(args, q.Limit)
	query += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := s.scanAccount(ctx, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// AddRefreshToken adds the next token of an existing family.
func (s *Store) AddRefreshToken(ctx context.Context, t RefreshToken) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.insertToken(ctx, tx, t) })
}

func (s *Store) insertToken(ctx context.Context, tx *sql.Tx, t RefreshToken) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (token_hash, family_id, account_id, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)`,
		t.Hash, t.FamilyID, t.AccountID, s.d.time(t.CreatedAt), s.d.time(t.ExpiresAt))
	return s.d.conflict(err)
}

// ConsumeRefreshToken marks the token used, atomically: of two concurrent
// calls with the same token exactly one succeeds and the other gets
// ErrTokenUsed. It returns the token (as it was) and its family; with
// ErrTokenUsed it returns them too, so the caller can revoke the family.
func (s *Store) ConsumeRefreshToken(ctx context.Context, hash string, now time.Time) (RefreshToken, RefreshFamily, error) {
	var t RefreshToken
	var f RefreshFamily
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var created, expires, used, fCreated, fExpires, fRevoked dbTime
		err := tx.QueryRowContext(ctx, `SELECT t.token_hash, t.family_id, t.account_id, t.created_at, t.expires_at, t.used_at,
			f.account_id, f.created_at, f.expires_at, f.revoked_at, f.revoke_reason
			FROM refresh_tokens t JOIN refresh_families f ON f.id=t.family_id WHERE t.token_hash=$1`, hash).
			Scan(&t.Hash, &t.FamilyID, &t.AccountID, &created, &expires, &used, &f.AccountID, &fCreated, &fExpires, &fRevoked, &f.RevokeReason)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		f.ID = t.FamilyID
		t.CreatedAt, t.ExpiresAt, t.UsedAt = created.T, expires.T, used.T
		f.CreatedAt, f.ExpiresAt, f.RevokedAt = fCreated.T, fExpires.T, fRevoked.T
		if used.Valid {
			return ErrTokenUsed
		}
		res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at=$2 WHERE token_hash=$1 AND used_at IS NULL`, hash, s.d.time(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrTokenUsed // lost a race with a concurrent use
		}
		return nil
	})
	return t, f, err
}

// RefreshFamily returns one family.
func (s *Store) RefreshFamily(ctx context.Context, id string) (RefreshFamily, error) {
	f := RefreshFamily{ID: id}
	var created, expires, revoked dbTime
	err := s.r.QueryRowContext(ctx, `SELECT account_id, created_at, expires_at, revoked_at, revoke_reason FROM refresh_families WHERE id=$1`, id).
		Scan(&f.AccountID, &created, &expires, &revoked, &f.RevokeReason)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshFamily{}, ErrNotFound
	}
	f.CreatedAt, f.ExpiresAt, f.RevokedAt = created.T, expires.T, revoked.T
	return f, err
}

// RevokeFamily revokes a family; revoking a revoked family keeps the first
// reason and time.
func (s *Store) RevokeFamily(ctx context.Context, id, reason string, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE refresh_families SET revoked_at=$2, revoke_reason=$3 WHERE id=$1 AND revoked_at IS NULL`,
		id, s.d.time(now), reason)
	return err
}

// RevokeAccountFamilies revokes every live family of an account except
// keep (which may be empty) and returns how many it revoked.
func (s *Store) RevokeAccountFamilies(ctx context.Context, accountID, keep, reason string, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE refresh_families SET revoked_at=$2, revoke_reason=$3
		WHERE account_id=$1 AND revoked_at IS NULL AND id<>$4`, accountID, s.d.time(now), reason, keep)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// AddRevocation records a revocation that every node's deny list picks up.
func (s *Store) AddRevocation(ctx context.Context, r Revocation) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO revocations (kind, subject, cutoff, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)`,
		r.Kind, r.Subject, s.d.time(r.Cutoff), s.d.time(r.CreatedAt), s.d.time(r.ExpiresAt))
	return err
}

// Revocations returns the revocations created at or after since that are
// still in force at now.
func (s *Store) Revocations(ctx context.Context, since, now time.Time) ([]Revocation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, kind, subject, cutoff, created_at, expires_at FROM revocations
		WHERE created_at >= $1 AND expires_at > $2 ORDER BY seq`, s.d.time(since), s.d.time(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var cutoff, created, expires dbTime
		if err := rows.Scan(&r.Seq, &r.Kind, &r.Subject, &cutoff, &created, &expires); err != nil {
			return nil, err
		}
		r.Cutoff, r.CreatedAt, r.ExpiresAt = cutoff.T, created.T, expires.T
		out = append(out, r)
	}
	return out, rows.Err()
}

// Prune deletes revocations and refresh tokens and families that expired
// before now, and returns how many rows it deleted.
func (s *Store) Prune(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM revocations WHERE expires_at <= $1`,
			`DELETE FROM refresh_tokens WHERE expires_at <= $1`,
			`DELETE FROM refresh_families WHERE expires_at <= $1`,
		} {
			res, err := tx.ExecContext(ctx, q, s.d.time(now))
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	return total, err
}

// AppendAudit writes one audit event.
func (s *Store) AppendAudit(ctx context.Context, e AuditEvent) error {
	ip, err := s.sealIP(ctx, e)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO audit_log (at, kind, account_id, actor_id, ip, detail) VALUES ($1,$2,$3,$4,$5,$6)`,
		s.d.time(e.At), e.Kind, nullString(e.AccountID), nullString(e.ActorID), ip, e.Detail)
	return err
}

// Audit pages through the audit log, newest first.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	var conds []string
	var args []any
	if q.AccountID != "" {
		args = append(args, q.AccountID)
		conds = append(conds, fmt.Sprintf("account_id=$%d", len(args)))
	}
	if q.Kind != "" {
		args = append(args, q.Kind)
		conds = append(conds, fmt.Sprintf("kind=$%d", len(args)))
	}
	if q.Before > 0 {
		args = append(args, q.Before)
		conds = append(conds, fmt.Sprintf("id<$%d", len(args)))
	}
	query := `SELECT id, at, kind, account_id, actor_id, ip, detail, chain_seq FROM audit_log`
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	args = append(args, q.Limit)
	query += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at dbTime
		var acc, actor sql.NullString
		var seq sql.NullInt64
		if err := rows.Scan(&e.ID, &at, &e.Kind, &acc, &actor, &e.IP, &e.Detail, &seq); err != nil {
			return nil, err
		}
		e.At, e.AccountID, e.ActorID, e.ChainSeq = at.T, acc.String, actor.String, seq.Int64
		if e.IP, err = s.openIP(ctx, e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	s.rewindWAL(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

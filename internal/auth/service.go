// Package auth is multijuego's identity service: accounts (username or
// email with a password, and device/guest accounts), argon2id password
// hashing, short-lived Ed25519 JWT access tokens published as a JWKS,
// rotating single-use refresh tokens with reuse detection, revocation that
// holds on every node, roles, login throttling and a security audit log.
//
// The service speaks in domain terms and returns *errcode.Error for anything
// the caller did wrong; the gateway turns those into HTTP answers.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
)

// Store is what the service needs from the relational store.
type Store interface {
	RevocationStore
	IdentityStore
	CreateAccount(ctx context.Context, a store.Account, deviceID string) error
	UpdateAccount(ctx context.Context, a store.Account) error
	AccountByID(ctx context.Context, id string) (store.Account, error)
	AccountByUsername(ctx context.Context, username string) (store.Account, error)
	AccountByEmail(ctx context.Context, email string) (store.Account, error)
	AccountByDeviceIDs(ctx context.Context, ids ...string) (store.Account, string, error)
	RekeyDevice(ctx context.Context, oldID, newID string) error
	ClearDevices(ctx context.Context, hashedPrefix, after string, limit int) ([]string, error)
	SealClear(ctx context.Context, limit int) (int, error)
	ListAccounts(ctx context.Context, q store.AccountQuery) ([]store.Account, error)
	WriteLogins(ctx context.Context, ws []store.LoginWrite) error
	AddRefreshToken(ctx context.Context, t store.RefreshToken) error
	ConsumeRefreshToken(ctx context.Context, hash string, now time.Time) (store.RefreshToken, store.RefreshFamily, error)
	RevokeFamily(ctx context.Context, id, reason string, now time.Time) error
	RevokeAccountFamilies(ctx context.Context, accountID, keep, reason string, now time.Time) (int, error)
	DeleteAccount(ctx context.Context, id string) error
	Prune(ctx context.Context, now time.Time) (int64, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) error
	Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error)
	ChainAudit(ctx context.Context, limit int) (n int, head store.AuditHead, busy bool, err error)
	VerifyAudit(ctx context.Context, anchor store.AuditHead) (store.AuditReport, error)
}

// Audit event kinds.
const (
	AuditRegister       = "register"
	AuditLoginOK        = "login_ok"
	AuditLoginFail      = "login_fail"
	AuditDeviceLogin    = "device_login"
	AuditTokenReuse     = "token_reuse"
	AuditLogout         = "logout"
	AuditPasswordChange = "password_change"
	AuditLink           = "link"
	AuditBan            = "ban"
	AuditUnban          = "unban"
	AuditRoles          = "roles_change"
	// AuditKeyRotate and AuditKEKRotate are written by `multijuego keys
	// rotate` and `keys rotate-kek` (internal/app), not by this service.
	AuditKeyRotate = "key_rotate"
	AuditKEKRotate = "kek_rotate"
)

// Meta describes the caller of a request, for throttling and the audit log.
type Meta struct {
	IP        string
	UserAgent string
}

// TokenPair is what a successful login, registration or refresh returns.
type TokenPair struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int // seconds until the access token expires
	AccountID    string
	Created      bool // device login created the account
}

// ProfileCache is what the service needs from the cache (cache.Typed).
type ProfileCache interface {
	GetOrLoad(ctx context.Context, key string, ttl time.Duration, loader func(context.Context) (Profile, error)) (Profile, error)
	Delete(ctx context.Context, keys ...string) error
}

// DeviceCache is what the service needs from the cache (cache.Typed) to
// find a device's account without a query: keyed device id hash to account
// id (devicekey.go).
type DeviceCache interface {
	GetOrLoad(ctx context.Context, key string, ttl time.Duration, loader func(context.Context) (string, error)) (string, error)
	Delete(ctx context.Context, keys ...string) error
}

// Profile is the public view of an account: what GET /v1/account shows and
// what the cache holds (never the password hash).
type Profile struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles"`
	Guest    bool     `json:"guest"`
	// DeviceCount is how many devices log in to the account. The device
	// ids themselves are credentials, kept only as keyed hashes, and never
	// shown, not even to the owner or an operator.
	DeviceCount int       `json:"device_count"`
	Banned      bool      `json:"banned"`
	BanReason   string    `json:"ban_reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ProfileOf makes the public view of an account.
func ProfileOf(a store.Account) Profile {
	return Profile{
		ID: a.ID, Username: a.Username, Email: a.Email, Roles: a.Roles, Guest: a.PasswordHash == "", DeviceCount: len(a.Devices),
		Banned: a.Banned(), BanReason: a.BanReason, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
}

// Service is the auth service.
type Service struct {
	cfg        Config
	st         Store
	profiles   ProfileCache
	profileTTL time.Duration
	devices    DeviceCache
	hasher     *Hasher
	tokens     *Tokens
	deny       *Denylist
	keys       *Keyring
	throttle   *Throttle
	signups    *Limiter
	// logins commits logins' sessions and audit rows together
	// (groupcommit.go).
	logins *loginWriter
	// deviceKey keys the hashes under which device ids are stored
	// (devicekey.go).
	deviceKey []byte
	// oidc checks external identity tokens (oidc.go).
	oidc *oidcVerifier
	// loopbackSignups: Deps.LoopbackSignups.
	loopbackSignups bool
	log             *slog.Logger
	now             func() time.Time
}

// Deps are the service's dependencies.
type Deps struct {
	Store Store
	// KV holds the login throttles and sign-up limits (kv.Store): shared by
	// every node when it is Redis or DynamoDB.
	KV Counters
	// FallbackKV holds the throttles' counts while KV is unreachable
	// (kv.Memory; the caller owns and closes it), at FallbackRate (0 <
	// FallbackRate <= 1; 0: DefaultThrottleFallback) of every throttle
	// limit. Nil: the throttles fail open while KV fails (a store that is
	// in-process already needs no fallback).
	FallbackKV   Counters
	FallbackRate float64
	// Profiles caches account profiles (cache.Typed[Profile]); nil reads
	// the store every time. ProfileTTL bounds an entry's life; every write
	// of an account invalidates its entry at once.
	Profiles   ProfileCache
	ProfileTTL time.Duration
	// Devices maps device id hashes to account ids (cache.Typed[string]),
	// for ProfileTTL too: with Profiles, a device login of a known device
	// reads no table (devicekey.go). Nil (or Profiles nil): every device
	// login reads the store.
	Devices DeviceCache
	// LoopbackSignups exempts sign-ups from loopback addresses from the
	// per-IP limit: a developer's own server on the embedded default,
	// where the demo and the load tool make every account from 127.0.0.1.
	LoopbackSignups bool
	// OIDCClient fetches the external issuers' discovery documents and
	// keys; nil: a client with auth.oidc.http_timeout.
	OIDCClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time // nil means time.Now
}

// New builds the service: opens (or creates) the signing keys in keysDir and
// loads the deny list from the store.
func New(ctx context.Context, cfg Config, keysDir KeysDir, d Deps) (*Service, error) {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys, err := OpenKeyring(keysDir, cfg.AccessTTL+cfg.ClockSkew, now)
	if err != nil {
		return nil, err
	}
	deviceKey, err := openDeviceKey(keysDir)
	if err != nil {
		return nil, err
	}
	deny := NewDenylist(d.Store, now)
	if err := deny.Sync(ctx); err != nil {
		return nil, fmt.Errorf("auth: load deny list: %w", err)
	}
	if d.KV == nil {
		return nil, errors.New("auth: no key-value store for the throttles")
	}
	oidc, err := newOIDCVerifier(cfg.OIDC, cfg.ClockSkew, d.OIDCClient, now)
	if err != nil {
		return nil, fmt.Errorf("auth: oidc: %w", err)
	}
	conc := cfg.HashConcurrency
	if conc == 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	s := &Service{
		cfg: cfg, st: d.Store, keys: keys, deny: deny, log: log, now: now, profiles: d.Profiles, profileTTL: d.ProfileTTL, devices: d.Devices,
		loopbackSignups: d.LoopbackSignups, oidc: oidc, deviceKey: deviceKey, logins: newLoginWriter(d.Store, loginBatch, loginQueue),
		hasher: NewHasher(Argon2Params{MemoryKiB: cfg.Argon2MemoryKiB, Iterations: cfg.Argon2Iterations, Parallelism: cfg.Argon2Parallelism}, conc, cfg.HashQueue),
		tokens: NewTokens(TokenConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTTL, Skew: cfg.ClockSkew, CacheSize: cfg.TokenCache}, keys, deny, now),
		throttle: NewThrottle(ThrottleConfig{
			IPLimit: cfg.LoginIPLimit, IPWindow: cfg.LoginIPWindow,
			AccountIPFailures: cfg.AccountIPFailures, AccountFailures: cfg.AccountFailures, FailureWindow: cfg.FailureWindow,
			KnownIPTTL: cfg.SessionTTL,
		}, d.KV, log),
	}
	s.throttle.nameKey = derivedKey(deviceKey, "mj-throttle-names-v1")
	if d.FallbackKV != nil {
		s.throttle.withFallback(d.FallbackKV, d.FallbackRate, now)
	}
	s.signups = NewLimiter("signup", cfg.SignupIPLimit, cfg.SignupIPWindow, s.throttle.c, s.throttle)
	return s, nil
}

// Tokens returns the token verifier (the gateway's edge check).
func (s *Service) Tokens() *Tokens { return s.tokens }

// Keys returns the signing keyring (for the JWKS endpoint).
func (s *Service) Keys() *Keyring { return s.keys }

// Hasher returns the password hasher (for metrics).
func (s *Service) Hasher() *Hasher { return s.hasher }

// Throttle returns the login throttle (for metrics).
func (s *Service) Throttle() *Throttle { return s.throttle }

// Denylist returns the deny list (for metrics).
func (s *Service) Denylist() *Denylist { return s.deny }

// Run keeps the keys and the deny list fresh, chains the audit log
// (auditchain.go) and prunes expired rows, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	logErr := func(what string) func(error) {
		return func(err error) { s.log.Error(what, "err", err) }
	}
	done := make(chan struct{}, 4)
	go func() { s.chainAudit(ctx); done <- struct{}{} }()
	go func() { _ = s.keys.Run(ctx, s.cfg.KeysReload, logErr("reload signing keys")); done <- struct{}{} }()
	go func() { _ = s.deny.Run(ctx, s.cfg.RevocationSync, logErr("sync deny list")); done <- struct{}{} }()
	go func() {
		// Once, at start, beside the other loops (a large database takes a
		// while); device logins convert the ids they meet meanwhile.
		if n, err := s.hashLegacyDevices(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("hash device ids stored in clear", "converted", n, "err", err)
		} else if n > 0 {
			s.log.Info("hashed device ids stored in clear", "devices", n)
		}
		// Likewise emails and audit addresses written before personal
		// data was sealed (store.SealClear; lookups find them meanwhile).
		if n, err := SealClear(ctx, s.st, nil); err != nil && ctx.Err() == nil {
			s.log.Error("seal personal data stored in clear", "converted", n, "err", err)
		} else if n > 0 {
			s.log.Info("sealed personal data stored in clear", "rows", n)
		}
		done <- struct{}{}
	}()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for range cap(done) {
				<-done
			}
			return nil
		case <-t.C:
			if n, err := s.st.Prune(ctx, s.now()); err != nil {
				s.log.Error("prune expired tokens", "err", err)
			} else if n > 0 {
				s.log.Info("pruned expired tokens and revocations", "rows", n)
			}
		}
	}
}

// Authenticate verifies an access token (the edge check for every request).
func (s *Service) Authenticate(token string) (*Principal, error) { return s.tokens.Verify(token) }

// Revoked reports whether p's token has been revoked since it was verified.
func (s *Service) Revoked(p *Principal) bool { return s.deny.Denied(p) }

var (
	errBadCredentials = &errcode.Error{Code: errcode.Unauthenticated, Message: "Invalid username, email or password."}
	errBadRefresh     = &errcode.Error{Code: errcode.Unauthenticated, Message: "The refresh token is invalid or expired."}
	errBanned         = &errcode.Error{Code: errcode.Banned, Message: "This account is banned."}
)

func (s *Service) audit(ctx context.Context, kind, accountID, actorID string, m Meta, detail map[string]any) {
	e := s.auditEvent(kind, accountID, actorID, m, detail)
	if err := s.st.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("write audit event", "kind", kind, "account", accountID, "err", err)
	}
}

// auditEvent makes an audit row: audit writes it at once, a login with its
// session (startSession).
func (s *Service) auditEvent(kind, accountID, actorID string, m Meta, detail map[string]any) store.AuditEvent {
	var d string
	if m.UserAgent != "" {
		if detail == nil {
			detail = map[string]any{}
		}
		ua := m.UserAgent
		if len(ua) > 256 {
			ua = ua[:256]
		}
		detail["user_agent"] = ua
	}
	if detail != nil {
		b, _ := json.Marshal(detail)
		d = string(b)
	}
	return store.AuditEvent{At: s.now(), Kind: kind, AccountID: accountID, ActorID: actorID, IP: m.IP, Detail: d}
}

// RecordAdminAction writes an operator's action that is not the auth
// service's own (ending a match, kicking a player, replaying dead letters)
// to the audit log, with actor as the actor. kind is prefixed "admin_".
func (s *Service) RecordAdminAction(ctx context.Context, actor *Principal, kind, accountID string, m Meta, detail map[string]any) {
	actorID := ""
	if actor != nil {
		actorID = actor.AccountID
	}
	s.audit(ctx, "admin_"+kind, accountID, actorID, m, detail)
}

func conflict(err error) error {
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		msg := map[string]string{"username": "That username is taken.", "email": "That email is already registered.", "device_id": "That device is already linked."}[ce.Field]
		if msg == "" {
			msg = "Already exists."
		}
		return &errcode.Error{Code: errcode.Conflict, Field: ce.Field, Message: msg}
	}
	return err
}

// allowSignup charges one sign-up to the client's IP, unless loopback
// sign-ups are exempt (Deps.LoopbackSignups) and it is one; a refusal
// names the setting, so an operator knows what to raise.
func (s *Service) allowSignup(ctx context.Context, m Meta) error {
	if s.loopbackSignups {
		if ip, err := netip.ParseAddr(m.IP); err == nil && ip.IsLoopback() {
			return nil
		}
	}
	retry, ok := s.signups.Allow(ctx, m.IP, s.now())
	if ok {
		return nil
	}
	retry = max(retry, time.Second)
	return &errcode.Error{Code: errcode.RateLimited, RetryAfter: retry, Message: fmt.Sprintf(
		"Too many new accounts from your address; try again in %d s. (The server allows auth.signup_ip_limit, %d, per address per auth.signup_ip_window, %s: --auth-signup-ip-limit raises it.)",
		int(retry.Round(time.Second)/time.Second), s.cfg.SignupIPLimit, s.cfg.SignupIPWindow)}
}

func rateLimited(retry time.Duration) error {
	if retry < time.Second {
		retry = time.Second
	}
	return &errcode.Error{Code: errcode.RateLimited, Message: "Too many attempts, try again later.", RetryAfter: retry}
}

// --- operations ---------------------------------------------------------------

// RegisterRequest creates a password account.
type RegisterRequest struct {
	Username string
	Email    string
	Password string
}

// Register creates an account with a password and starts a session.
func (s *Service) Register(ctx context.Context, r RegisterRequest, m Meta) (TokenPair, error) {
	if err := validUsername(r.Username); err != nil {
		return TokenPair{}, err
	}
	email, err := normalEmail(r.Email)
	if err != nil {
		return TokenPair{}, err
	}
	if err := s.validPassword("password", r.Password); err != nil {
		return TokenPair{}, err
	}
	if err := s.allowSignup(ctx, m); err != nil {
		return TokenPair{}, err
	}
	hash, err := s.hasher.Hash(ctx, r.Password)
	if err != nil {
		return TokenPair{}, err
	}
	now := s.now()
	a := store.Account{ID: uuid.Must(uuid.NewV7()).String(), Username: r.Username, Email: email, PasswordHash: hash,
		Roles: []string{RolePlayer}, CreatedAt: now, UpdatedAt: now}
	if err := s.st.CreateAccount(ctx, a, ""); err != nil {
		return TokenPair{}, conflict(err)
	}
	return s.startSession(ctx, a, loginAudit(s.auditEvent(AuditRegister, a.ID, "", m, nil)))
}

// LoginRequest names the account by username or email.
type LoginRequest struct {
	Username string
	Email    string
	Password string
}

// Login checks a password and starts a session. Unknown account and wrong
// password give the same error after the same work.
func (s *Service) Login(ctx context.Context, r LoginRequest, m Meta) (TokenPair, error) {
	ident := strings.ToLower(strings.TrimSpace(r.Username))
	byEmail := false
	switch {
	case r.Username != "" && r.Email != "":
		return TokenPair{}, errcode.Field("email", "Give username or email, not both.")
	case r.Email != "":
		ident, byEmail = strings.ToLower(strings.TrimSpace(r.Email)), true
	case r.Username == "":
		return TokenPair{}, errcode.Field("username", "Username or email is required.")
	}
	if len(ident) > 254 {
		return TokenPair{}, errcode.Field("username", "Username or email is too long.")
	}
	if r.Password == "" {
		return TokenPair{}, errcode.Field("password", "Password is required.")
	}
	if utf8.RuneCountInString(r.Password) > s.cfg.PasswordMaxLength {
		return TokenPair{}, errcode.Field("password", "Password must be at most %d characters long.", s.cfg.PasswordMaxLength)
	}
	if retry, scope, ok := s.throttle.AttemptScope(ctx, m.IP, ident, s.now()); !ok {
		// Counted (multijuego_auth_logins_throttled_total); audited once
		// per subject and window, not per refused attempt, which would
		// let a flood fill the audit log.
		return TokenPair{}, s.loginThrottled(ctx, scope, ident, byEmail, retry, m)
	}
	a, err := s.lookup(ctx, ident, byEmail)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, err
	}
	ok, rehash, herr := s.hasher.Verify(ctx, a.PasswordHash, r.Password) // a is zero when not found: dummy hash
	if herr != nil {
		return TokenPair{}, herr
	}
	if !ok {
		s.throttle.Failure(ctx, m.IP, ident)
		s.audit(ctx, AuditLoginFail, a.ID, "", m, map[string]any{"reason": "bad_credentials"})
		return TokenPair{}, errBadCredentials
	}
	if a.Banned() {
		s.audit(ctx, AuditLoginFail, a.ID, "", m, map[string]any{"reason": "banned"})
		return TokenPair{}, errBanned
	}
	s.throttle.Success(ctx, m.IP, ident)
	if rehash {
		if h, err := s.hasher.Hash(ctx, r.Password); err == nil {
			a.PasswordHash, a.UpdatedAt = h, s.now()
			if err := s.updateAccount(ctx, a); err != nil {
				s.log.Warn("upgrade password hash", "account", a.ID, "err", err)
			}
		}
	}
	return s.startSession(ctx, a, loginAudit(s.auditEvent(AuditLoginOK, a.ID, "", m, nil)))
}

// lookup finds an account by normalised username or email.
func (s *Service) lookup(ctx context.Context, ident string, byEmail bool) (store.Account, error) {
	if byEmail {
		return s.st.AccountByEmail(ctx, ident)
	}
	return s.st.AccountByUsername(ctx, ident)
}

// Refresh exchanges a refresh token for a new pair. Each refresh token works
// once: presenting a used one revokes its whole session (family), on the
// assumption that it was stolen, and writes an audit event.
func (s *Service) Refresh(ctx context.Context, token string, m Meta) (TokenPair, error) {
	if !strings.HasPrefix(token, refreshPrefix) || len(token) > 128 {
		return TokenPair{}, errBadRefresh
	}
	now := s.now()
	old, fam, err := s.st.ConsumeRefreshToken(ctx, hashRefresh(token), now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return TokenPair{}, errBadRefresh
	case errors.Is(err, store.ErrTokenUsed):
		if !fam.Revoked() {
			if err := s.revokeSession(ctx, fam.ID, fam.AccountID, "reuse", now); err != nil {
				return TokenPair{}, err
			}
		}
		s.audit(ctx, AuditTokenReuse, fam.AccountID, "", m, map[string]any{"family": fam.ID})
		s.log.Warn("refresh token reuse: session revoked", "account", fam.AccountID, "family", fam.ID, "ip", m.IP)
		return TokenPair{}, &errcode.Error{Code: errcode.Unauthenticated, Message: "This refresh token was already used; the session has been revoked. Log in again."}
	case err != nil:
		return TokenPair{}, err
	}
	if fam.Revoked() || !now.Before(old.ExpiresAt) || !now.Before(fam.ExpiresAt) {
		return TokenPair{}, errBadRefresh
	}
	a, err := s.st.AccountByID(ctx, old.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, errBadRefresh
	}
	if err != nil {
		return TokenPair{}, err
	}
	if a.Banned() {
		return TokenPair{}, errBanned
	}
	refresh := newRefreshToken(now)
	exp := now.Add(s.cfg.RefreshTTL)
	if exp.After(fam.ExpiresAt) {
		exp = fam.ExpiresAt
	}
	if err := s.st.AddRefreshToken(ctx, store.RefreshToken{Hash: hashRefresh(refresh), FamilyID: fam.ID, AccountID: a.ID, CreatedAt: now, ExpiresAt: exp}); err != nil {
		return TokenPair{}, err
	}
	return s.pair(a, fam.ID, refresh)
}

// revokeSession revokes a refresh family and every access token issued with
// it, on every node.
func (s *Service) revokeSession(ctx context.Context, sid, accountID, reason string, now time.Time) error {
	if err := s.st.RevokeFamily(ctx, sid, reason, now); err != nil {
		return err
	}
	return s.deny.Revoke(ctx, store.Revocation{Kind: store.RevokeSession, Subject: sid, Cutoff: now, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.AccessTTL + s.cfg.ClockSkew)})
}

// revokeAccount voids every refresh family of the account and every access
// token of it issued before now, on every node; kind is store.RevokeAccount,
// or RevokeKick when an operator's ban also closes the account's sockets as
// kicked.
func (s *Service) revokeAccount(ctx context.Context, kind, accountID, reason string) error {
	now := s.now()
	if _, err := s.st.RevokeAccountFamilies(ctx, accountID, "", reason, now); err != nil {
		return err
	}
	return s.denyAccount(ctx, kind, accountID, now)
}

// denyAccount denies the account's access tokens issued before now until
// they have expired.
func (s *Service) denyAccount(ctx context.Context, kind, accountID string, now time.Time) error {
	return s.deny.Revoke(ctx, store.Revocation{Kind: kind, Subject: accountID, Cutoff: now, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.AccessTTL + s.cfg.ClockSkew)})
}

// Kick voids the account's current access tokens without ending its
// sessions: every gateway closes the account's realtime socket as kicked
// (its seat is given up at once) within the deny-list sync, and the player
// may refresh and come back.
func (s *Service) Kick(ctx context.Context, accountID string) error {
	if _, err := s.Account(ctx, accountID); err != nil {
		return err
	}
	return s.denyAccount(ctx, RevokeKick, accountID, s.now())
}

// Logout ends the caller's session: its refresh family is revoked and its
// access tokens are denied until they expire, on every node.
func (s *Service) Logout(ctx context.Context, p *Principal, m Meta) error {
	now := s.now()
	if p.SID != "" {
		if err := s.revokeSession(ctx, p.SID, p.AccountID, "logout", now); err != nil {
			return err
		}
	} else if err := s.deny.Revoke(ctx, store.Revocation{Kind: store.RevokeToken, Subject: p.JTI, Cutoff: now, CreatedAt: now,
		ExpiresAt: p.ExpiresAt.Add(s.cfg.ClockSkew)}); err != nil {
		return err
	}
	s.audit(ctx, AuditLogout, p.AccountID, "", m, nil)
	return nil
}

// Account returns the caller's account.
func (s *Service) Account(ctx context.Context, id string) (store.Account, error) {
	a, err := s.st.AccountByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, errcode.New(errcode.NotFound, "Account not found.")
	}
	return a, err
}

// Profile returns an account's public view, through the cache when there is
// one (cache-aside; writes invalidate).
func (s *Service) Profile(ctx context.Context, id string) (Profile, error) {
	return loadProfile(ctx, s.st, s.profiles, s.profileTTL, id)
}

// updateAccount writes the account and invalidates its cached profile on
// every node.
func (s *Service) updateAccount(ctx context.Context, a store.Account) error {
	if err := s.st.UpdateAccount(ctx, a); err != nil {
		return err
	}
	if s.profiles != nil {
		// The cache logs and counts its own failures; a failed invalidation
		// leaves an entry that expires within ProfileTTL.
		_ = s.profiles.Delete(context.WithoutCancel(ctx), a.ID)
	}
	return nil
}

// checkCurrentPassword verifies a signed-in caller's password before a
// sensitive change. Wrong ones count as failed logins of the account (by
// username), so a stolen access token cannot guess the password faster
// than the login route allows.
func (s *Service) checkCurrentPassword(ctx context.Context, a store.Account, current string, m Meta) error {
	ident := strings.ToLower(a.Username)
	if retry, scope, ok := s.throttle.AttemptScope(ctx, m.IP, ident, s.now()); !ok {
		return s.loginThrottled(ctx, scope, ident, false, retry, m)
	}
	ok, _, err := s.hasher.Verify(ctx, a.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		s.throttle.Failure(ctx, m.IP, ident)
		s.audit(ctx, AuditLoginFail, a.ID, "", m, map[string]any{"reason": "bad_current_password"})
		return &errcode.Error{Code: errcode.Unauthenticated, Field: "current_password", Message: "The current password is wrong."}
	}
	s.throttle.Success(ctx, m.IP, ident)
	return nil
}

// LinkRequest adds password credentials to a guest account.
type LinkRequest struct {
	Username string // optional: replaces the generated guest name
	Email    string // optional
	Password string
}

// Link adds a password (and optionally a username and email) to a
// device-only account, so the player can log in from anywhere.
func (s *Service) Link(ctx context.Context, p *Principal, r LinkRequest, m Meta) (store.Account, error) {
	a, err := s.Account(ctx, p.AccountID)
	if err != nil {
		return a, err
	}
	if a.PasswordHash != "" {
		return store.Account{}, &errcode.Error{Code: errcode.Conflict, Field: "password", Message: "This account already has a password; change it instead."}
	}
	if r.Username != "" {
		if err := validUsername(r.Username); err != nil {
			return store.Account{}, err
		}
		a.Username = r.Username
	}
	if r.Email != "" {
		if a.Email, err = normalEmail(r.Email); err != nil {
			return store.Account{}, err
		}
	}
	if err := s.validPassword("password", r.Password); err != nil {
		return store.Account{}, err
	}
	if a.PasswordHash, err = s.hasher.Hash(ctx, r.Password); err != nil {
		return store.Account{}, err
	}
	a.UpdatedAt = s.now()
	if err := s.updateAccount(ctx, a); err != nil {
		return store.Account{}, conflict(err)
	}
	s.audit(ctx, AuditLink, a.ID, "", m, nil)
	return a, nil
}

// ChangePassword replaces the password after checking the current one. Every
// other session of the account ends; the caller gets a fresh pair.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next string, m Meta) (TokenPair, error) {
	if err := s.validPassword("new_password", next); err != nil {
		return TokenPair{}, err
	}
	a, err := s.Account(ctx, p.AccountID)
	if err != nil {
		return TokenPair{}, err
	}
	if a.PasswordHash == "" {
		return TokenPair{}, &errcode.Error{Code: errcode.Conflict, Field: "current_password", Message: "This account has no password yet; link one first."}
	}
	if err := s.checkCurrentPassword(ctx, a, current, m); err != nil {
		return TokenPair{}, err
	}
	if a.PasswordHash, err = s.hasher.Hash(ctx, next); err != nil {
		return TokenPair{}, err
	}
	now := s.now()
	a.UpdatedAt, a.RevokedBefore = now, now
	if err := s.updateAccount(ctx, a); err != nil {
		return TokenPair{}, err
	}
	// Every token issued before now goes, the caller's included, even one
	// issued earlier in this second; the fresh pair below is issued after
	// and stays good (Denylist.Check).
	if err := s.revokeAccount(ctx, store.RevokeAccount, a.ID, "password_change"); err != nil {
		return TokenPair{}, err
	}
	return s.startSession(ctx, a, loginAudit(s.auditEvent(AuditPasswordChange, a.ID, "", m, nil)))
}

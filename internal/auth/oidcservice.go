package auth

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
)

// IdentityStore is what sign-in with an external identity needs from the
// store, beside Store.
type IdentityStore interface {
	LinkIdentity(ctx context.Context, id store.Identity) error
	UnlinkIdentity(ctx context.Context, accountID, issuer, subject string) error
	AccountByIdentity(ctx context.Context, issuer, subject string) (store.Account, error)
	Identities(ctx context.Context, accountID string) ([]store.Identity, error)
}

// Audit event kinds of external identities.
const (
	AuditOIDCLogin      = "oidc_login"
	AuditIdentityLink   = "identity_link"
	AuditIdentityUnlink = "identity_unlink"
)

// OIDCRequest is an external identity token: an ID token or access token
// of a trusted issuer, named by Issuer (its configured name) or, when
// Issuer is empty, by the token's iss claim.
type OIDCRequest struct {
	Token  string
	Issuer string
}

var errNoIssuers = identityErr(errcode.IdentityIssuer, "This server trusts no external identity provider (auth.oidc.issuers).")

// oidcThrottleKey is the throttle's "account" of external sign-ins from
// ip: the identity is not known before the token verifies, so bad tokens
// count against the address (account_ip_failures), as do its attempts
// (login_ip_limit).
func oidcThrottleKey(ip string) string { return "oidc " + ip }

// verifyExternal checks r's token for a sign-in or a link from m,
// throttled like the other logins. A refused token is audited and counted
// as a failure.
func (s *Service) verifyExternal(ctx context.Context, r OIDCRequest, accountID string, m Meta) (externalID, error) {
	if len(s.oidc.issuers) == 0 {
		return externalID{}, errNoIssuers
	}
	if r.Token == "" {
		return externalID{}, errcode.Field("token", "token is required.")
	}
	key := oidcThrottleKey(m.IP)
	if retry, scope, ok := s.throttle.AttemptScope(ctx, m.IP, key, s.now()); !ok {
		subject := m.IP
		if scope != ScopeIP {
			subject = key
		}
		return externalID{}, s.refuseThrottled(ctx, scope, subject, accountID, retry, m)
	}
	id, err := s.oidc.verify(ctx, r.Token, r.Issuer)
	if e := errcode.As(err); e != nil && strings.HasPrefix(string(e.Code), "identity_") {
		s.throttle.Failure(ctx, m.IP, key)
		s.audit(ctx, AuditLoginFail, accountID, "", m, map[string]any{"reason": string(e.Code), "issuer": r.Issuer})
	}
	if err != nil {
		return externalID{}, err
	}
	s.throttle.Success(ctx, m.IP, key)
	return id, nil
}

// OIDCLogin signs in with an external identity token and starts a session
// for the account linked to it, creating a guest-like account (role player
// and the roles its groups map to) on first use.
func (s *Service) OIDCLogin(ctx context.Context, r OIDCRequest, m Meta) (TokenPair, error) {
	id, err := s.verifyExternal(ctx, r, "", m)
	if err != nil {
		return TokenPair{}, err
	}
	a, err := s.st.AccountByIdentity(ctx, id.issuer.Issuer, id.subject)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p, err := s.oidcSignup(ctx, id, m)
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.Field != "identity" {
			return p, err
		}
		// Two first sign-ins of one identity raced; the other one won.
		if a, err = s.st.AccountByIdentity(ctx, id.issuer.Issuer, id.subject); err != nil {
			return TokenPair{}, err
		}
	case err != nil:
		return TokenPair{}, err
	}
	detail := map[string]any{"issuer": id.issuer.Name}
	if a.Banned() {
		detail["reason"] = "banned"
		s.audit(ctx, AuditLoginFail, a.ID, "", m, detail)
		return TokenPair{}, errBanned
	}
	if a, err = s.syncGroupRoles(ctx, a, id); err != nil {
		return TokenPair{}, err
	}
	return s.startSession(ctx, a, loginAudit(s.auditEvent(AuditOIDCLogin, a.ID, "", m, detail)))
}

// oidcSignup is an identity's first sign-in: account, identity link,
// session and audit rows in one group commit.
func (s *Service) oidcSignup(ctx context.Context, id externalID, m Meta) (TokenPair, error) {
	if err := s.allowSignup(ctx, m); err != nil {
		return TokenPair{}, err
	}
	now := s.now()
	a := store.Account{ID: uuid.Must(uuid.NewV7()).String(), Username: "guest-" + strings.ToLower(randomID(9)),
		Roles: id.roles(), CreatedAt: now, UpdatedAt: now}
	detail := map[string]any{"issuer": id.issuer.Name}
	w := loginAudit(s.auditEvent(AuditRegister, a.ID, "", m, map[string]any{"issuer": id.issuer.Name, "guest": true}),
		s.auditEvent(AuditOIDCLogin, a.ID, "", m, detail))
	w.Account = a
	w.Identity = store.Identity{Issuer: id.issuer.Issuer, Subject: id.subject, AccountID: a.ID, CreatedAt: now}
	p, err := s.startSession(ctx, a, w)
	p.Created = err == nil
	return p, err
}

// syncGroupRoles makes the roles the issuer's group mapping governs follow
// the token's groups: mapped roles the groups grant are added, mapped
// roles they no longer grant removed; other roles (player, or one an
// operator gave) stay. An issuer without groups_claim changes nothing.
func (s *Service) syncGroupRoles(ctx context.Context, a store.Account, id externalID) (store.Account, error) {
	if id.issuer.GroupsClaim == "" {
		return a, nil
	}
	granted := id.roles()
	var roles []string
	for _, r := range a.Roles {
		mapped := false
		for _, mr := range id.issuer.GroupRoles {
			mapped = mapped || mr == r
		}
		if !mapped || slices.Contains(granted, r) {
			roles = append(roles, r)
		}
	}
	for _, r := range granted {
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if slices.Equal(roles, a.Roles) {
		return a, nil
	}
	old := a.Roles
	a.Roles, a.UpdatedAt = roles, s.now()
	if err := s.updateAccount(ctx, a); err != nil {
		return a, err
	}
	s.audit(ctx, AuditRoles, a.ID, "", Meta{}, map[string]any{"from": old, "to": roles, "issuer": id.issuer.Name})
	return a, nil
}

// LinkIdentity links the identity r's token proves to the signed-in
// account. An identity linked to another account is a conflict.
func (s *Service) LinkIdentity(ctx context.Context, p *Principal, r OIDCRequest, m Meta) (store.Identity, error) {
	id, err := s.verifyExternal(ctx, r, p.AccountID, m)
	if err != nil {
		return store.Identity{}, err
	}
	link := store.Identity{Issuer: id.issuer.Issuer, Subject: id.subject, AccountID: p.AccountID, CreatedAt: s.now()}
	if err := s.st.LinkIdentity(ctx, link); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			return store.Identity{}, &errcode.Error{Code: errcode.Conflict, Field: "token", Message: "That identity is already linked to an account."}
		}
		return store.Identity{}, err
	}
	s.audit(ctx, AuditIdentityLink, p.AccountID, p.AccountID, m, map[string]any{"issuer": id.issuer.Name})
	return link, nil
}

// UnlinkIdentity removes one of the signed-in account's identities; issuer
// is the configured name or the iss URL. The account's last way to sign
// in (no password, no device, this identity alone) is not removed.
func (s *Service) UnlinkIdentity(ctx context.Context, p *Principal, issuer, subject string, m Meta) error {
	for _, k := range s.oidc.issuers {
		if k.cfg.Name == issuer {
			issuer = k.cfg.Issuer
		}
	}
	a, err := s.Account(ctx, p.AccountID)
	if err != nil {
		return err
	}
	ids, err := s.st.Identities(ctx, a.ID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ids, func(i store.Identity) bool { return i.Issuer == issuer && i.Subject == subject }) {
		return &errcode.Error{Code: errcode.NotFound, Message: "This account has no such linked identity."}
	}
	if a.PasswordHash == "" && len(a.Devices) == 0 && len(ids) == 1 {
		return &errcode.Error{Code: errcode.Conflict, Message: "This identity is the account's only way to sign in; add a password first (POST /v1/account/link)."}
	}
	if err := s.st.UnlinkIdentity(ctx, a.ID, issuer, subject); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &errcode.Error{Code: errcode.NotFound, Message: "This account has no such linked identity."}
		}
		return err
	}
	s.audit(ctx, AuditIdentityUnlink, a.ID, a.ID, m, map[string]any{"issuer": issuer})
	return nil
}

// Identities lists the signed-in account's linked identities.
func (s *Service) Identities(ctx context.Context, p *Principal) ([]store.Identity, error) {
	return s.st.Identities(ctx, p.AccountID)
}

package auth

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
)

// ListAccounts pages through accounts (admin).
func (s *Service) ListAccounts(ctx context.Context, q store.AccountQuery) ([]store.Account, error) {
	if q.Limit < 0 || q.Limit > 500 {
		return nil, errcode.Field("limit", "Limit must be between 1 and 500.")
	}
	return s.st.ListAccounts(ctx, q)
}

// Ban bans an account: it cannot log in or refresh, its live tokens are
// revoked on every node, and its realtime socket is closed as kicked.
func (s *Service) Ban(ctx context.Context, actor *Principal, accountID, reason string, m Meta) (store.Account, error) {
	if len(reason) > 500 {
		return store.Account{}, errcode.Field("reason", "Reason must be at most 500 characters.")
	}
	a, err := s.Account(ctx, accountID)
	if err != nil {
		return a, err
	}
	if actor != nil && actor.AccountID == a.ID {
		return store.Account{}, errcode.New(errcode.Conflict, "You cannot ban yourself.")
	}
	now := s.now()
	if !a.Banned() {
		a.BannedAt = now
	}
	a.BanReason, a.RevokedBefore, a.UpdatedAt = reason, now, now
	if err := s.updateAccount(ctx, a); err != nil {
		return store.Account{}, err
	}
	if err := s.revokeAccount(ctx, RevokeKick, a.ID, "ban"); err != nil {
		return store.Account{}, err
	}
	s.audit(ctx, AuditBan, a.ID, actorID(actor), m, map[string]any{"reason": reason})
	return a, nil
}

// Unban lifts a ban. Tokens revoked by the ban stay revoked.
func (s *Service) Unban(ctx context.Context, actor *Principal, accountID string, m Meta) (store.Account, error) {
	a, err := s.Account(ctx, accountID)
	if err != nil {
		return a, err
	}
	a.BannedAt, a.BanReason, a.UpdatedAt = time.Time{}, "", s.now()
	if err := s.updateAccount(ctx, a); err != nil {
		return store.Account{}, err
	}
	s.audit(ctx, AuditUnban, a.ID, actorID(actor), m, nil)
	return a, nil
}

// SetRoles replaces an account's roles. Removing a role revokes the
// account's tokens, so a demotion takes effect at once.
func (s *Service) SetRoles(ctx context.Context, actor *Principal, accountID string, roles []string, m Meta) (store.Account, error) {
	if len(roles) == 0 {
		return store.Account{}, errcode.Field("roles", "At least one role is required.")
	}
	for _, r := range roles {
		if !ValidRole(r) {
			return store.Account{}, errcode.Field("roles", "Unknown role %q (allowed: player, admin, service).", r)
		}
	}
	a, err := s.Account(ctx, accountID)
	if err != nil {
		return a, err
	}
	removed := false
	for _, r := range a.Roles {
		if !slices.Contains(roles, r) {
			removed = true
		}
	}
	old := a.Roles
	now := s.now()
	a.Roles, a.UpdatedAt = dedupe(roles), now
	if err := s.updateAccount(ctx, a); err != nil {
		return store.Account{}, err
	}
	if removed {
		if err := s.revokeAccount(ctx, store.RevokeAccount, a.ID, "roles_change"); err != nil {
			return store.Account{}, err
		}
	}
	s.audit(ctx, AuditRoles, a.ID, actorID(actor), m, map[string]any{"from": old, "to": a.Roles})
	return a, nil
}

// AccountByName finds an account by username (for operator commands).
func (s *Service) AccountByName(ctx context.Context, username string) (store.Account, error) {
	a, err := s.st.AccountByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return a, errcode.New(errcode.NotFound, "No account named %q.", username)
	}
	return a, err
}

// Audit pages through the audit log (admin).
func (s *Service) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error) {
	if q.Limit < 0 || q.Limit > 500 {
		return nil, errcode.Field("limit", "Limit must be between 1 and 500.")
	}
	return s.st.Audit(ctx, q)
}

func actorID(p *Principal) string {
	if p == nil {
		return ""
	}
	return p.AccountID
}

func dedupe(list []string) []string {
	var out []string
	for _, x := range list {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

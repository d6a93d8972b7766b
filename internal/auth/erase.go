package auth

import (
	"context"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
)

// AuditAccountDeleted is written when an account is erased, by its owner
// (no actor) or by an operator (the actor).
const AuditAccountDeleted = "account_deleted"

// DeleteAccount erases the caller's own account. An account with a
// password must give it (checked and throttled like a login); a guest
// account, which has none, is erased on its token alone.
func (s *Service) DeleteAccount(ctx context.Context, p *Principal, password string, m Meta) error {
	a, err := s.Account(ctx, p.AccountID)
	if err != nil {
		return err
	}
	if a.PasswordHash != "" {
		if password == "" {
			return errcode.Field("current_password", "Give this account's password to delete it.")
		}
		if err := s.checkCurrentPassword(ctx, a, password, m); err != nil {
			return err
		}
	}
	return s.erase(ctx, a.ID, "", m)
}

// AdminDeleteAccount erases an account for an operator. An operator
// cannot erase their own account this way.
func (s *Service) AdminDeleteAccount(ctx context.Context, actor *Principal, accountID string, m Meta) error {
	if actor != nil && actor.AccountID == accountID {
		return errcode.New(errcode.Conflict, "Delete your own account with DELETE /v1/account.")
	}
	if _, err := s.Account(ctx, accountID); err != nil {
		return err
	}
	return s.erase(ctx, accountID, actorID(actor), m)
}

// erase revokes every token of the account on every node first (its open
// sockets close as revoked), then deletes its row, devices, identities and
// sessions (store.DeleteAccount), and writes the audit row. Match results
// and stats stay under the account id, which then names nobody. A crash
// between the two steps leaves a revoked account that a retry deletes.
func (s *Service) erase(ctx context.Context, accountID, actor string, m Meta) error {
	if err := s.revokeAccount(ctx, store.RevokeAccount, accountID, "deleted"); err != nil {
		return err
	}
	if err := s.st.DeleteAccount(ctx, accountID); err != nil {
		return err
	}
	if s.profiles != nil {
		_ = s.profiles.Delete(context.WithoutCancel(ctx), accountID) // expires within ProfileTTL if this fails
	}
	s.audit(ctx, AuditAccountDeleted, accountID, actor, m, nil)
	return nil
}

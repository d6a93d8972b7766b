package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/store"
)

func hashRefresh(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// refreshPrefix marks our refresh tokens, so they are recognisable in a leak
// scanner and never confused with an access token.
const refreshPrefix = "mjr_"

func newRefreshToken() string { return refreshPrefix + randomID(32) }

// startSession creates a refresh family and issues the first pair. The
// family and its first token are committed with w's other rows (a new
// account, the login's audit events) in the next group commit; the pair is
// signed while the batch forms and returned only once the rows are
// committed.
func (s *Service) startSession(ctx context.Context, a store.Account, w store.LoginWrite) (TokenPair, error) {
	now := s.now()
	fam := store.RefreshFamily{ID: uuid.Must(uuid.NewV7()).String(), AccountID: a.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	refresh := newRefreshToken()
	rt := store.RefreshToken{Hash: hashRefresh(refresh), FamilyID: fam.ID, AccountID: a.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}
	p, err := s.pair(a, fam.ID, refresh)
	if err != nil {
		return TokenPair{}, err
	}
	w.Family, w.Token = fam, rt
	if err := s.logins.write(ctx, w); err != nil {
		if errors.Is(err, store.ErrBanned) {
			// Banned after the account was read (a cached profile on a
			// node whose deny list has not synced yet, or a read that
			// raced the ban): the session's rows are not written.
			return TokenPair{}, errBanned
		}
		return TokenPair{}, err
	}
	return p, nil
}

// loginAudit is the LoginWrite of a login's audit events.
func loginAudit(es ...store.AuditEvent) store.LoginWrite { return store.LoginWrite{Audit: es} }

func (s *Service) pair(a store.Account, sid, refresh string) (TokenPair, error) {
	access, _, err := s.tokens.Issue(a.ID, a.Username, a.Roles, sid)
	if err != nil {
		return TokenPair{}, err
	}
	// expires_in is the token's lifetime (exp - iat), as RFC 6749 has it.
	return TokenPair{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(s.cfg.AccessTTL / time.Second), AccountID: a.ID}, nil
}

package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/store"
)

// A refresh token is refreshPrefix, the time it was made (UnixMilli as
// refreshTimeLen hex digits), then 32 random bytes (base64url). It is
// stored by its key: the time digits, then the hex SHA-256 of the whole
// token. The keys of new tokens thus come in time order, so storing one
// adds to the end of the tokens' index instead of a random page of it
// (a page written per login, a quarter of what a login storm wrote to
// SQLite's WAL). Tokens made before the time digits (47 characters) are
// stored by the hash alone.
const refreshTimeLen = 12

const refreshLen = len(refreshPrefix) + refreshTimeLen + 43

func hashRefresh(token string) string {
	sum := sha256.Sum256([]byte(token))
	if len(token) != refreshLen {
		return hex.EncodeToString(sum[:])
	}
	key := make([]byte, refreshTimeLen+2*len(sum))
	copy(key, token[len(refreshPrefix):len(refreshPrefix)+refreshTimeLen])
	hex.Encode(key[refreshTimeLen:], sum[:])
	return string(key)
}

// refreshPrefix marks our refresh tokens, so they are recognisable in a leak
// scanner and never confused with an access token.
const refreshPrefix = "mjr_"

// newRefreshToken makes a refresh token at now.
func newRefreshToken(now time.Time) string {
	return fmt.Sprintf("%s%0*x%s", refreshPrefix, refreshTimeLen, uint64(now.UnixMilli())&(1<<(4*refreshTimeLen)-1), randomID(32))
}

// startSession creates a refresh family and issues the first pair. The
// family and its first token are committed with w's other rows (a new
// account, the login's audit events) in the next group commit; the pair is
// signed while the batch forms and returned only once the rows are
// committed.
func (s *Service) startSession(ctx context.Context, a store.Account, w store.LoginWrite) (TokenPair, error) {
	now := s.now()
	fam := store.RefreshFamily{ID: uuid.Must(uuid.NewV7()).String(), AccountID: a.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	refresh := newRefreshToken(now)
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

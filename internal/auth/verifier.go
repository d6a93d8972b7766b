package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
)

// Verifier is the edge check of a process that runs without the auth role
// (a gateway on its own): access tokens are verified against the auth
// role's JWKS, and revocations are read from the shared store into a deny
// list every cfg.RevocationSync (the same feed the auth role writes), so a
// logout, ban, refresh reuse or password change counts here within that
// interval. It never signs and never sees a password.
type Verifier struct {
	cfg        Config
	tokens     *Tokens
	keys       *RemoteKeys
	deny       *Denylist
	accounts   AccountReader
	profiles   ProfileCache
	profileTTL time.Duration
	log        *slog.Logger
}

// AccountReader is what the verifier reads from the shared store.
type AccountReader interface {
	RevocationStore
	AccountByID(ctx context.Context, id string) (store.Account, error)
}

// VerifierDeps are the verifier's dependencies.
type VerifierDeps struct {
	// JWKSURL is the auth role's key set (AUTH_URL/.well-known/jwks.json).
	JWKSURL    string
	HTTPClient *http.Client
	Store      AccountReader
	Profiles   ProfileCache // nil reads the store every time
	ProfileTTL time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

// NewVerifier fetches the key set and loads the deny list. Both must
// succeed: a node that cannot check tokens must not start.
func NewVerifier(ctx context.Context, cfg Config, d VerifierDeps) (*Verifier, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Store == nil {
		return nil, errors.New("auth: the verifier needs the shared store (revocations)")
	}
	keys, err := NewRemoteKeys(ctx, d.JWKSURL, d.HTTPClient, d.Now)
	if err != nil {
		return nil, err
	}
	deny := NewDenylist(d.Store, d.Now)
	if err := deny.Sync(ctx); err != nil {
		return nil, fmt.Errorf("auth: load deny list: %w", err)
	}
	tc := TokenConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTTL, Skew: cfg.ClockSkew, CacheSize: cfg.TokenCache}
	return &Verifier{cfg: cfg, tokens: NewVerifyingTokens(tc, keys, deny, d.Now), keys: keys, deny: deny,
		accounts: d.Store, profiles: d.Profiles, profileTTL: d.ProfileTTL, log: d.Logger}, nil
}

// Authenticate verifies an access token.
func (v *Verifier) Authenticate(token string) (*Principal, error) { return v.tokens.Verify(token) }

// Revoked reports whether p's token has been revoked since it was verified.
func (v *Verifier) Revoked(p *Principal) bool { return v.deny.Denied(p) }

// Profile returns an account's public view, through the cache when there is
// one (the auth role invalidates it on every write).
func (v *Verifier) Profile(ctx context.Context, id string) (Profile, error) {
	return loadProfile(ctx, v.accounts, v.profiles, v.profileTTL, id)
}

// Tokens is the token verifier (for metrics).
func (v *Verifier) Tokens() *Tokens { return v.tokens }

// Denylist is the deny list (for metrics).
func (v *Verifier) Denylist() *Denylist { return v.deny }

// Keys is the remote key set.
func (v *Verifier) Keys() *RemoteKeys { return v.keys }

// Run keeps the key set and the deny list fresh until ctx ends.
func (v *Verifier) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = v.keys.Run(ctx, v.cfg.KeysReload, func(err error) { v.log.Warn("refresh JWKS", "err", err) })
	}()
	_ = v.deny.Run(ctx, v.cfg.RevocationSync, func(err error) { v.log.Error("sync deny list", "err", err) })
	<-done
	return nil
}

// loadProfile reads an account's public view, cache-aside.
func loadProfile(ctx context.Context, st interface {
	AccountByID(ctx context.Context, id string) (store.Account, error)
}, cache ProfileCache, ttl time.Duration, id string) (Profile, error) {
	load := func(ctx context.Context) (Profile, error) {
		a, err := st.AccountByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return Profile{}, errcode.New(errcode.NotFound, "Account not found.")
		}
		if err != nil {
			return Profile{}, err
		}
		return ProfileOf(a), nil
	}
	if cache == nil {
		return load(ctx)
	}
	return cache.GetOrLoad(ctx, id, ttl, load)
}

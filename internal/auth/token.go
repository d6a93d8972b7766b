package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/multijuego/multijuego/internal/errcode"
)

// Roles.
const (
	RolePlayer  = "player"
	RoleAdmin   = "admin"
	RoleService = "service"
)

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return r == RolePlayer || r == RoleAdmin || r == RoleService }

// accessType is the JWT "typ" of access tokens (RFC 9068). Checking it keeps
// any other JWT we might sign one day from passing as an access token.
const accessType = "at+jwt"

// maxTokenBytes bounds what the parser will look at.
const maxTokenBytes = 4096

// Principal is the verified identity behind an access token.
type Principal struct {
	AccountID string
	Roles     []string
	JTI       string
	SID       string    // the refresh family the token was issued with
	IssuedAt  time.Time // to the nanosecond (iat_ns); else the second of iat
	ExpiresAt time.Time
	// Username is the account's username when the token was issued
	// (preferred_username), "" in a token without it: a display name, as
	// fresh as the token (a rename shows in the next one).
	Username string
}

// HasRole reports whether the principal holds role.
func (p *Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

type accessClaims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles"`
	SID   string   `json:"sid,omitempty"`
	// IssuedNano is the issue time in Unix nanoseconds: iat has whole
	// seconds, too coarse to tell a token issued just before an account
	// revocation from one issued just after it in the same second.
	IssuedNano int64 `json:"iat_ns,omitempty"`
	// Username is OpenID Connect's preferred_username: the realtime
	// gateway names a player with it without reading the account.
	Username string `json:"preferred_username,omitempty"`
}

// TokenConfig says what tokens we issue and accept.
type TokenConfig struct {
	Issuer    string
	Audience  string
	TTL       time.Duration
	Skew      time.Duration // leeway for exp, nbf and iat
	CacheSize int           // verified tokens remembered; 0 disables the cache
}

// KeySource finds the public key a token's kid names: our own keyring
// (*Keyring) in the auth role, the auth role's JWKS (*RemoteKeys) anywhere
// else.
type KeySource interface {
	Public(kid string) (ed25519.PublicKey, bool)
}

// Tokens signs and verifies access tokens.
type Tokens struct {
	cfg    TokenConfig
	signer *Keyring // nil: verify only
	keys   KeySource
	deny   *Denylist
	now    func() time.Time
	parser *jwt.Parser
	cache  *tokenCache

	// Counters for metrics.
	CacheHits, CacheMisses atomic.Int64
}

// NewTokens returns a signer and verifier over keys; deny may be nil in
// tools that only sign.
func NewTokens(cfg TokenConfig, keys *Keyring, deny *Denylist, now func() time.Time) *Tokens {
	t := NewVerifyingTokens(cfg, keys, deny, now)
	t.signer = keys
	return t
}

// NewVerifyingTokens returns a verifier that signs nothing: a process
// without the auth role checks tokens against keys (the auth role's JWKS).
func NewVerifyingTokens(cfg TokenConfig, keys KeySource, deny *Denylist, now func() time.Time) *Tokens {
	t := &Tokens{cfg: cfg, keys: keys, deny: deny, now: now}
	// RFC 8725: an allow-list of one asymmetric algorithm, so neither "none"
	// nor an HMAC keyed with a public key can pass; iss and aud checked; exp
	// required.
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Skew),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(), // one token, one encoding: no malleable base64 padding bits
	)
	if cfg.CacheSize > 0 {
		t.cache = newTokenCache(cfg.CacheSize)
	}
	return t
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Issue signs an access token for the account.
func (t *Tokens) Issue(accountID, username string, roles []string, sid string) (token string, exp time.Time, err error) {
	if t.signer == nil {
		return "", time.Time{}, errors.New("auth: this verifier signs nothing")
	}
	key := t.signer.Active()
	if key == nil {
		return "", time.Time{}, errors.New("auth: no signing key")
	}
	issued := t.now().UTC()
	now := issued.Truncate(time.Second)
	exp = now.Add(t.cfg.TTL)
	c := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   accountID,
			Audience:  jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        randomID(16),
		},
		Roles:      roles,
		SID:        sid,
		IssuedNano: issued.UnixNano(),
		Username:   username,
	}
	j := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	j.Header["kid"] = key.Kid
	j.Header["typ"] = accessType
	token, err = j.SignedString(key.Private)
	return token, exp, err
}

var errBadToken = &errcode.Error{Code: errcode.Unauthenticated, Message: "The access token is invalid."}
var errExpired = &errcode.Error{Code: errcode.Unauthenticated, Message: "The access token has expired."}
var errRevoked = &errcode.Error{Code: errcode.Unauthenticated, Message: "The access token has been revoked."}

// Verify checks an access token and returns its principal. A token seen
// before is served from a bounded cache of verified tokens; expiry and the
// deny list are checked on every call, cached or not.
func (t *Tokens) Verify(token string) (*Principal, error) {
	if len(token) == 0 || len(token) > maxTokenBytes {
		return nil, errBadToken
	}
	now := t.now()
	if t.cache != nil {
		if p, ok := t.cache.get(token); ok {
			t.CacheHits.Add(1)
			if !now.Before(p.ExpiresAt.Add(t.cfg.Skew)) {
				return nil, errExpired
			}
			if t.deny != nil && t.deny.Denied(p) {
				return nil, errRevoked
			}
			return p, nil
		}
		t.CacheMisses.Add(1)
	}
	p, err := t.parse(token)
	if err != nil {
		return nil, err
	}
	if t.deny != nil && t.deny.Denied(p) {
		return nil, errRevoked
	}
	if t.cache != nil {
		t.cache.put(token, p, now)
	}
	return p, nil
}

// VerifyUncached checks the signature and claims of a token without the
// cache (benchmarks compare the two paths).
func (t *Tokens) VerifyUncached(token string) (*Principal, error) {
	if len(token) == 0 || len(token) > maxTokenBytes {
		return nil, errBadToken
	}
	p, err := t.parse(token)
	if err != nil {
		return nil, err
	}
	if t.deny != nil && t.deny.Denied(p) {
		return nil, errRevoked
	}
	return p, nil
}

func (t *Tokens) parse(token string) (*Principal, error) {
	var c accessClaims
	_, err := t.parser.ParseWithClaims(token, &c, func(j *jwt.Token) (any, error) {
		if typ, _ := j.Header["typ"].(string); typ != accessType {
			return nil, errors.New("wrong typ")
		}
		kid, _ := j.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		// kid only selects among our own keys; it is never a path or URL.
		pub, ok := t.keys.Public(kid)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return pub, nil
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, errExpired
		}
		return nil, errBadToken
	}
	if c.Subject == "" || c.ID == "" || c.IssuedAt == nil {
		return nil, errBadToken
	}
	return &Principal{
		AccountID: c.Subject, Roles: c.Roles, JTI: c.ID, SID: c.SID,
		IssuedAt: issuedAt(c.IssuedAt.Time, c.IssuedNano), ExpiresAt: c.ExpiresAt.Time, Username: c.Username,
	}, nil
}

// issuedAt is the precise issue time when iat_ns agrees with iat (same
// second), else iat: the start of the second, the earliest the token can
// have been issued, so an account cutoff in that second still covers it.
func issuedAt(iat time.Time, nano int64) time.Time {
	if nano == 0 {
		return iat
	}
	if p := time.Unix(0, nano); !p.Before(iat) && p.Before(iat.Add(time.Second)) {
		return p
	}
	return iat
}

// tokenCache remembers verified tokens. It is sharded to keep lock
// contention low and bounded per shard: when a shard is full, expired entries
// go first, else an arbitrary one (Go's map order is randomised). Entries
// are keyed by 128 bits of two keyed hashes of the token (seeds secret to
// the process), not by the token: a cached token would otherwise keep its
// request's header value alive (about 500 bytes per open socket), and a
// forged token matching a cached key needs a 2^-128 guess.
type tokenCache struct {
	seeds    [2]maphash.Seed
	perShard int
	shards   [32]cacheShard
}

type cacheKey [2]uint64

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]*Principal
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, perShard: max(1, size/32)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*Principal)
	}
	return c
}

func (c *tokenCache) key(token string) (*cacheShard, cacheKey) {
	k := cacheKey{maphash.String(c.seeds[0], token), maphash.String(c.seeds[1], token)}
	return &c.shards[k[0]%uint64(len(c.shards))], k
}

func (c *tokenCache) get(token string) (*Principal, bool) {
	s, k := c.key(token)
	s.mu.RLock()
	p, ok := s.m[k]
	s.mu.RUnlock()
	return p, ok
}

func (c *tokenCache) put(token string, p *Principal, now time.Time) {
	s, key := c.key(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.perShard {
		// Look at a few entries: drop the expired ones among them, and at
		// least one in any case.
		scanned, evicted := 0, 0
		for k, v := range s.m {
			if evicted == 0 || v.ExpiresAt.Before(now) {
				delete(s.m, k)
				evicted++
			}
			if scanned++; scanned >= 16 {
				break
			}
		}
	}
	s.m[key] = p
}

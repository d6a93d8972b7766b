package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// RemoteKeys are the verification keys of an auth role in another process,
// read from its JWKS (/.well-known/jwks.json): a gateway or game node
// checks tokens with them and never needs the signing keys. The set is
// refreshed every interval (Run) and, when a token names a kid the set
// lacks (a key rotated since), fetched again at once, at most once a
// second, so a flood of made-up kids costs one request a second.
type RemoteKeys struct {
	url string
	hc  *http.Client
	now func() time.Time

	fetchMu sync.Mutex // one fetch at a time

	mu        sync.RWMutex
	keys      map[string]ed25519.PublicKey
	lastFetch time.Time // last attempt, successful or not
}

// maxJWKSBytes bounds the JWKS document we read.
const maxJWKSBytes = 1 << 20

// NewRemoteKeys fetches the JWKS at url once and returns the key source.
// hc nil uses a client with a 5 s timeout.
func NewRemoteKeys(ctx context.Context, url string, hc *http.Client, now func() time.Time) (*RemoteKeys, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	r := &RemoteKeys{url: url, hc: hc, now: now, keys: map[string]ed25519.PublicKey{}}
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Public returns the key for kid, fetching the set again first if kid is
// unknown and the last fetch is at least a second old.
func (r *RemoteKeys) Public(kid string) (ed25519.PublicKey, bool) {
	r.mu.RLock()
	k, ok := r.keys[kid]
	last := r.lastFetch
	r.mu.RUnlock()
	if ok {
		return k, true
	}
	if r.now().Sub(last) < time.Second {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.Refresh(ctx); err != nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok = r.keys[kid]
	return k, ok
}

// Len is the number of keys held.
func (r *RemoteKeys) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.keys)
}

// Refresh fetches the set and replaces the keys held. A failed fetch keeps
// the old keys: tokens keep verifying while the auth role restarts.
func (r *RemoteKeys) Refresh(ctx context.Context) error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	r.mu.Lock()
	r.lastFetch = r.now()
	r.mu.Unlock()
	keys, err := r.fetch(ctx)
	if err != nil {
		return fmt.Errorf("auth: JWKS %s: %w", r.url, err)
	}
	r.mu.Lock()
	r.keys = keys
	r.mu.Unlock()
	return nil
}

func (r *RemoteKeys) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	res, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("document larger than 1 MiB")
	}
	return ParseJWKS(body)
}

// ParseJWKS reads the Ed25519 verification keys of a JWKS document. Keys of
// other types or uses are skipped (we only ever accept EdDSA); a document
// that is not a key set, or an Ed25519 key that is malformed, is an error.
func ParseJWKS(doc []byte) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("not a JWKS: no keys member")
	}
	out := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Alg != "" && k.Alg != "EdDSA") || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize || k.Kid == "" {
			return nil, fmt.Errorf("malformed Ed25519 key %q", k.Kid)
		}
		out[k.Kid] = ed25519.PublicKey(x)
	}
	return out, nil
}

// Run refreshes the set every interval until ctx ends.
func (r *RemoteKeys) Run(ctx context.Context, interval time.Duration, onErr func(error)) error {
	every(ctx, interval, func() error { return r.Refresh(ctx) }, onErr)
	return nil
}

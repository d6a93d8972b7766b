package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// issuerKeys are one external issuer's verification keys, read from the
// JWKS its discovery document (/.well-known/openid-configuration) names.
// They are fetched on first use and again once older than refresh; a token
// naming a kid the set lacks (the issuer rotated) fetches them at once, at
// most once per refetch interval, so a flood of made-up kids costs the
// issuer one request per interval. A failed fetch keeps the old keys.
type issuerKeys struct {
	cfg     IssuerConfig
	hc      *http.Client
	now     func() time.Time
	refresh time.Duration
	refetch time.Duration

	fetchMu sync.Mutex // one fetch at a time

	mu      sync.RWMutex
	keys    map[string]any // kid → *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	fetched time.Time      // last successful fetch
	tried   time.Time      // last attempt
}

// errUnknownKey: the kid is not in the issuer's key set, fetched again.
var errUnknownKey = errors.New("auth: unknown key id")

// maxIssuerDoc bounds a discovery document or JWKS read from an issuer.
const maxIssuerDoc = 1 << 20

// key returns the key named kid, fetching the set when it is stale or
// lacks kid and the last attempt is at least the refetch interval old.
// It is errUnknownKey when the set has no such key, or the fetch error
// when the issuer could not be read and no key is held.
func (k *issuerKeys) key(ctx context.Context, kid string) (any, error) {
	k.mu.RLock()
	key, ok := k.keys[kid]
	fresh := k.now().Sub(k.fetched) < k.refresh
	recent := k.now().Sub(k.tried) < k.refetch
	k.mu.RUnlock()
	if (ok && fresh) || recent {
		if ok {
			return key, nil
		}
		return nil, errUnknownKey
	}
	err := k.fetch(ctx)
	k.mu.RLock()
	defer k.mu.RUnlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	if err != nil && len(k.keys) == 0 {
		return nil, err
	}
	return nil, errUnknownKey
}

// fetch reads the discovery document, then the JWKS. Callers queued behind
// a fetch in progress do not fetch again.
func (k *issuerKeys) fetch(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	k.mu.Lock()
	if k.now().Sub(k.tried) < k.refetch {
		k.mu.Unlock()
		return nil
	}
	k.tried = k.now()
	k.mu.Unlock()
	keys, err := k.read(ctx)
	if err != nil {
		return fmt.Errorf("auth: issuer %s: %w", k.cfg.Name, err)
	}
	k.mu.Lock()
	k.keys, k.fetched = keys, k.now()
	k.mu.Unlock()
	return nil
}

func (k *issuerKeys) read(ctx context.Context) (map[string]any, error) {
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	discURL := strings.TrimSuffix(k.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	if err := k.getJSON(ctx, discURL, &disc); err != nil {
		return nil, err
	}
	// OpenID Connect Discovery 1.0, section 4.3: the document's issuer is
	// exactly the one it was fetched for.
	if disc.Issuer != k.cfg.Issuer {
		return nil, fmt.Errorf("discovery document names issuer %q, not %q", disc.Issuer, k.cfg.Issuer)
	}
	if err := checkIssuerURL(disc.JWKSURI); err != nil {
		return nil, fmt.Errorf("discovery document's jwks_uri: %w", err)
	}
	var set jwkSet
	if err := k.getJSON(ctx, disc.JWKSURI, &set); err != nil {
		return nil, err
	}
	return set.publicKeys()
}

func (k *issuerKeys) getJSON(ctx context.Context, url string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := k.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxIssuerDoc+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > maxIssuerDoc {
		return fmt.Errorf("GET %s: document larger than 1 MiB", url)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// jwkSet is a JSON Web Key Set (RFC 7517) of public keys.
type jwkSet struct {
	Keys []issuerJWK `json:"keys"`
}

type issuerJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// publicKeys returns the signature keys by kid. Keys for encryption and
// of types we do not know are skipped; a malformed key of a known type is
// an error (the issuer's set is broken: keep the old one).
func (s jwkSet) publicKeys() (map[string]any, error) {
	if s.Keys == nil {
		return nil, errors.New("not a JWKS: no keys member")
	}
	out := make(map[string]any, len(s.Keys))
	for _, j := range s.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		var key any
		var err error
		switch j.Kty {
		case "RSA":
			key, err = j.rsa()
		case "EC":
			key, err = j.ec()
		case "OKP":
			key, err = j.ed25519()
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", j.Kid, err)
		}
		out[j.Kid] = key
	}
	return out, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func (j issuerJWK) rsa() (*rsa.PublicKey, error) {
	n, err1 := b64(j.N)
	e, err2 := b64(j.E)
	if err := errors.Join(err1, err2); err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("malformed RSA key")
	}
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if k.N.BitLen() < 2048 || k.E < 3 || k.E%2 == 0 {
		return nil, fmt.Errorf("RSA key of %d bits, exponent %d; at least 2048 bits and an odd exponent wanted", k.N.BitLen(), k.E)
	}
	return k, nil
}

func (j issuerJWK) ec() (*ecdsa.PublicKey, error) {
	curve, size := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[j.Crv], 0
	if curve == nil {
		return nil, fmt.Errorf("curve %q not supported", j.Crv)
	}
	size = (curve.Params().BitSize + 7) / 8
	x, err1 := b64(j.X)
	y, err2 := b64(j.Y)
	if errors.Join(err1, err2) != nil || len(x) != size || len(y) != size {
		return nil, errors.New("malformed EC key")
	}
	return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
}

func (j issuerJWK) ed25519() (ed25519.PublicKey, error) {
	x, err := b64(j.X)
	if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
		return nil, errors.New("malformed or unsupported OKP key")
	}
	return ed25519.PublicKey(x), nil
}

package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Signing keys live as one JSON file per key in a directory (by default
// DATA_DIR/keys, mode 0700, files 0600), the private key sealed by the key
// provider (KeysDir). The newest key that is not retired
// signs; retired keys keep verifying until every token they signed has
// expired (retain), then stop counting and are deleted by the next rotation.
// Nodes that share the directory (a Kubernetes Secret or volume) share the
// keys; a node that sees an unknown kid re-reads the directory at once.

type keyFile struct {
	Kid        string     `json:"kid"`
	Alg        string     `json:"alg"`
	CreatedAt  time.Time  `json:"created_at"`
	RetiredAt  *time.Time `json:"retired_at,omitempty"`
	Seed       []byte     `json:"seed,omitempty"`        // in clear: written before sealing, or without a provider
	SealedSeed []byte     `json:"sealed_seed,omitempty"` // sealed by the provider, kid as associated data

	inClear bool // read with its seed in clear
}

// Key is one Ed25519 signing key.
type Key struct {
	Kid       string
	Private   ed25519.PrivateKey
	Public    ed25519.PublicKey
	CreatedAt time.Time
	RetiredAt time.Time // zero while it may sign
}

// Keyring holds the signing keys of one directory.
type Keyring struct {
	dir    KeysDir
	retain time.Duration
	now    func() time.Time

	mu       sync.RWMutex
	keys     map[string]*Key // keys that verify
	active   *Key
	jwks     []byte
	lastLoad time.Time
	opened   map[string][]byte // sealed seed -> seed, of the last load
}

// OpenKeyring loads dir, generating the first key when there is none.
// retain is how long a retired key keeps verifying (the access-token
// lifetime plus clock skew).
// Keys found in clear are rewritten sealed.
func OpenKeyring(dir KeysDir, retain time.Duration, now func() time.Time) (*Keyring, error) {
	if err := os.MkdirAll(dir.Path, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	files, err := dir.readKeys()
	if err != nil {
		return nil, err
	}
	if err := dir.sealInPlace(files); err != nil {
		return nil, err
	}
	k := &Keyring{dir: dir, retain: retain, now: now}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	if k.Active() == nil {
		if _, err := dir.writeNewKey(now()); err != nil {
			return nil, err
		}
		if err := k.Reload(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func thumbprint(pub ed25519.PublicKey) string {
	// RFC 7638: members in lexicographic order, no whitespace.
	j := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(j))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:22]
}

func (d KeysDir) writeNewKey(now time.Time) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	kf := keyFile{Kid: thumbprint(pub), Alg: "EdDSA", CreatedAt: now.UTC(), Seed: priv.Seed()}
	return kf.Kid, d.writeKeyFile(kf, true)
}

// writeKeyFile writes kf, its seed sealed when d has a Wrapper.
func (d KeysDir) writeKeyFile(kf keyFile, create bool) error {
	if w, ok, err := d.seal(kf.Seed, signingAAD(kf.Kid)); err != nil {
		return fmt.Errorf("keys: seal %s: %w", kf.Kid, err)
	} else if ok {
		kf.Seed, kf.SealedSeed = nil, w
	}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(d.Path, kf.Kid+".json")
	if create {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("keys: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("keys: %w", err)
		}
		return f.Close()
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return os.Rename(tmp, path)
}

// readKeys reads every key file of d, seeds unsealed (Seed set, in
// memory only); cache maps sealed seeds already opened to their seed, so
// a reload does not call the provider again for keys it has seen.
func (d KeysDir) readKeys(cache ...map[string][]byte) ([]keyFile, error) {
	dir := d.Path
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	var out []keyFile
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		var kf keyFile
		if err := json.Unmarshal(data, &kf); err != nil {
			return nil, fmt.Errorf("keys: %s: %w", e.Name(), err)
		}
		kf.inClear = len(kf.SealedSeed) == 0
		if !kf.inClear {
			if kf.Seed, err = d.openSeed(kf, cache...); err != nil {
				return nil, fmt.Errorf("keys: %s: %w (every node that shares the keys directory needs the same keyring, seal.keyring_file)", e.Name(), err)
			}
		}
		if kf.Alg != "EdDSA" || len(kf.Seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("keys: %s: not an Ed25519 key", e.Name())
		}
		if got := thumbprint(ed25519.NewKeyFromSeed(kf.Seed).Public().(ed25519.PublicKey)); got != kf.Kid {
			return nil, fmt.Errorf("keys: %s: kid %q does not match the key (want %q)", e.Name(), kf.Kid, got)
		}
		out = append(out, kf)
	}
	return out, nil
}

func (d KeysDir) openSeed(kf keyFile, cache ...map[string][]byte) ([]byte, error) {
	for _, c := range cache {
		if seed, ok := c[string(kf.SealedSeed)]; ok {
			return seed, nil
		}
	}
	return d.unseal(kf.SealedSeed, signingAAD(kf.Kid))
}

// Reload re-reads the directory.
func (k *Keyring) Reload() error {
	k.mu.RLock()
	opened := k.opened
	k.mu.RUnlock()
	files, err := k.dir.readKeys(opened)
	if err != nil {
		return err
	}
	now := k.now()
	keys := make(map[string]*Key, len(files))
	seeds := make(map[string][]byte, len(files))
	var active *Key
	for _, kf := range files {
		if len(kf.SealedSeed) > 0 {
			seeds[string(kf.SealedSeed)] = kf.Seed
		}
		priv := ed25519.NewKeyFromSeed(kf.Seed)
		key := &Key{Kid: kf.Kid, Private: priv, Public: priv.Public().(ed25519.PublicKey), CreatedAt: kf.CreatedAt}
		if kf.RetiredAt != nil {
			key.RetiredAt = *kf.RetiredAt
			if now.After(key.RetiredAt.Add(k.retain)) {
				continue // every token it signed has expired
			}
		} else if active == nil || key.CreatedAt.After(active.CreatedAt) ||
			(key.CreatedAt.Equal(active.CreatedAt) && key.Kid > active.Kid) {
			active = key
		}
		keys[kf.Kid] = key
	}
	jwks, err := renderJWKS(keys)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.keys, k.active, k.jwks, k.lastLoad, k.opened = keys, active, jwks, now, seeds
	k.mu.Unlock()
	return nil
}

// Active returns the key that signs, or nil.
func (k *Keyring) Active() *Key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active
}

// Public returns the verification key for kid. An unknown kid triggers one
// re-read of the directory (at most once a second), so a key rotated on
// another node is picked up without waiting for the periodic reload.
func (k *Keyring) Public(kid string) (ed25519.PublicKey, bool) {
	k.mu.RLock()
	key, ok := k.keys[kid]
	last := k.lastLoad
	k.mu.RUnlock()
	if ok {
		return key.Public, true
	}
	if k.now().Sub(last) < time.Second {
		return nil, false
	}
	if err := k.Reload(); err != nil {
		return nil, false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if key, ok := k.keys[kid]; ok {
		return key.Public, true
	}
	return nil, false
}

// JWKS returns the JSON Web Key Set of the verifying keys.
func (k *Keyring) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// Run reloads the directory every interval until ctx ends.
func (k *Keyring) Run(ctx context.Context, interval time.Duration, onErr func(error)) error {
	every(ctx, interval, k.Reload, onErr)
	return nil
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

func renderJWKS(keys map[string]*Key) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, key := range keys {
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(key.Public), Kid: key.Kid, Alg: "EdDSA", Use: "sig"})
	}
	sort.Slice(set.Keys, func(i, j int) bool { return set.Keys[i].Kid < set.Keys[j].Kid })
	return json.Marshal(set)
}

// KeyInfo describes a key for `multijuego keys list`.
type KeyInfo struct {
	Kid       string
	CreatedAt time.Time
	RetiredAt time.Time
}

// ListKeys describes the keys in dir, newest first.
func ListKeys(dir KeysDir) ([]KeyInfo, error) {
	files, err := dir.readKeys()
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(files))
	for _, kf := range files {
		ki := KeyInfo{Kid: kf.Kid, CreatedAt: kf.CreatedAt}
		if kf.RetiredAt != nil {
			ki.RetiredAt = *kf.RetiredAt
		}
		out = append(out, ki)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// RotateKeys generates a new signing key in dir, retires the keys that were
// signing, and deletes keys retired more than retain ago. Running nodes pick
// the new key up at their next reload (or at once, on the first token signed
// by it that they see).
func RotateKeys(dir KeysDir, retain time.Duration, now time.Time) (string, error) {
	if err := os.MkdirAll(dir.Path, 0o700); err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	files, err := dir.readKeys()
	if err != nil {
		return "", err
	}
	kid, err := dir.writeNewKey(now)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, kf := range files {
		switch {
		case kf.RetiredAt == nil:
			t := now.UTC()
			kf.RetiredAt = &t
			errs = append(errs, dir.writeKeyFile(kf, false))
		case now.After(kf.RetiredAt.Add(retain)):
			errs = append(errs, os.Remove(filepath.Join(dir.Path, kf.Kid+".json")))
		}
	}
	return kid, errors.Join(errs...)
}

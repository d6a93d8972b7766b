package seal

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Vault stores owners' wrapped data keys. It must live apart from the data
// the keys seal (another database, or at least another backup policy): a
// backup of the data then holds no key, and Delete makes an owner's
// ciphertexts in it unreadable. Implementations are safe for concurrent
// use.
type Vault interface {
	// Keys returns the keys of those owners that have one, and of those
	// whose key was destroyed, without Wrapped bytes.
	Keys(ctx context.Context, owners []string) (map[string]Key, error)
	// AddKeys stores keys of owners that have none and says how many it
	// stored; a key of an owner that already has one, or had one
	// destroyed, is dropped (the first writer wins).
	AddKeys(ctx context.Context, keys []Key) (int, error)
	// DeleteKey destroys an owner's key and remembers that it did, so
	// that none is made again for the owner (none is not an error).
	DeleteKey(ctx context.Context, owner string) error
}

// SealedPrefix starts every sealed field value as stored: no email,
// address or other text field a player gives starts with it.
const SealedPrefix = "sealed:"

// ErrErased is what opening a field gives when its owner's data key was
// destroyed (the account was erased).
var ErrErased = errors.New("seal: the owner's data key was destroyed")

// Fields seals personal fields of records with their owners' data keys
// (kept in a Vault, one per owner, made on first use) and computes blind
// indexes for lookups. With sealing off it stores values in clear (for
// comparison runs and deployments that choose so) but still indexes them,
// so lookups work the same either way. It reads values stored in clear
// before sealing was on.
type Fields struct {
	sealer *Sealer
	vault  Vault
	index  []byte
	on     bool
	max    int

	mu   sync.Mutex
	keys map[string]Key // owner -> data key (wrapped), at most max
}

// NewFields returns Fields over provider p and vault v, with indexKey for
// blind indexes (32 secret bytes, the same on every node). on chooses
// whether Seal encrypts. cacheMax bounds the data keys kept in memory.
func NewFields(p Provider, v Vault, indexKey []byte, on bool, cacheMax int) *Fields {
	return &Fields{sealer: New(p, cacheMax), vault: v, index: indexKey, on: on, max: max(cacheMax, 1), keys: map[string]Key{}}
}

// Sealing reports whether Seal encrypts.
func (f *Fields) Sealing() bool { return f.on }

// Index is the blind index of a normalised value of field: HMAC-SHA256
// under the index key over the field name (length-prefixed) and the
// value, base64url. Every node with the key computes the same; without it
// the indexes cannot be tested against guesses; equal values in different
// fields do not match.
func (f *Fields) Index(field, value string) string {
	m := hmac.New(sha256.New, f.index)
	var n [binary.MaxVarintLen64]byte
	m.Write(n[:binary.PutUvarint(n[:], uint64(len(field)))])
	m.Write([]byte(field))
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Prepare makes sure every owner has a data key, reading the missing ones
// from the vault and creating those it lacks in one write. Sealing for
// many owners (a batch of logins) calls it first so that Seal then costs
// no round trip. Owners in created are new (accounts this batch creates):
// their keys are made without asking the vault first.
func (f *Fields) Prepare(ctx context.Context, owners, created []string) error {
	if !f.on || len(owners)+len(created) == 0 {
		return nil
	}
	isNew := make(map[string]bool, len(created))
	for _, o := range created {
		isNew[o] = true
	}
	missing := f.uncached(append(owners, created...))
	if len(missing) == 0 {
		return nil
	}
	var lookup []string
	for _, o := range missing {
		if !isNew[o] {
			lookup = append(lookup, o)
		}
	}
	found := map[string]Key{}
	if len(lookup) > 0 {
		var err error
		if found, err = f.vault.Keys(ctx, lookup); err != nil {
			return fmt.Errorf("seal: read data keys: %w", err)
		}
	}
	var fresh []Key
	for _, o := range missing {
		if _, ok := found[o]; ok {
			continue
		}
		k, err := f.sealer.NewKey(ctx, o, 1)
		if err != nil {
			return err
		}
		fresh = append(fresh, k)
	}
	if len(fresh) > 0 {
		stored, err := f.vault.AddKeys(ctx, fresh)
		if err != nil {
			return fmt.Errorf("seal: store data keys: %w", err)
		}
		for _, k := range fresh {
			found[k.Owner] = k
		}
		if stored == len(fresh) {
			return f.remember(found)
		}
		// Another node made some of these first (or erased the owner):
		// take what the vault holds.
		owners := make([]string, len(fresh))
		for i, k := range fresh {
			owners[i] = k.Owner
		}
		again, err := f.vault.Keys(ctx, owners)
		if err != nil {
			return fmt.Errorf("seal: read data keys: %w", err)
		}
		for o, k := range again {
			found[o] = k
		}
	}
	return f.remember(found)
}

func (f *Fields) remember(keys map[string]Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for o, k := range keys {
		f.rememberLocked(o, k)
	}
	return nil
}

func (f *Fields) uncached(owners []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, o := range owners {
		if _, ok := f.keys[o]; !ok && !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

func (f *Fields) rememberLocked(owner string, k Key) {
	if _, ok := f.keys[owner]; !ok && len(f.keys) >= f.max {
		for old := range f.keys { // map order: an arbitrary entry
			delete(f.keys, old)
			break
		}
	}
	f.keys[owner] = k
}

// key returns owner's data key, from the cache or the vault; create makes
// one when there is none.
func (f *Fields) key(ctx context.Context, owner string, create bool) (Key, error) {
	f.mu.Lock()
	k, ok := f.keys[owner]
	f.mu.Unlock()
	if ok {
		if k.Wrapped == nil {
			return Key{}, ErrErased
		}
		return k, nil
	}
	if create {
		if err := f.Prepare(ctx, []string{owner}, nil); err != nil {
			return Key{}, err
		}
	} else {
		found, err := f.vault.Keys(ctx, []string{owner})
		if err != nil {
			return Key{}, fmt.Errorf("seal: read data key: %w", err)
		}
		if k, ok := found[owner]; ok {
			f.mu.Lock()
			f.rememberLocked(owner, k)
			f.mu.Unlock()
		}
	}
	f.mu.Lock()
	k, ok = f.keys[owner]
	f.mu.Unlock()
	if !ok || k.Wrapped == nil {
		return Key{}, ErrErased
	}
	return k, nil
}

// Seal encrypts field of record for owner and returns the text to store
// (SealedPrefix + base64url); with sealing off, plain itself. An empty
// value stays empty. ErrErased when owner's key was destroyed: nothing
// personal is stored for an erased owner.
func (f *Fields) Seal(ctx context.Context, owner, record, field, plain string) (string, error) {
	if !f.on || plain == "" {
		return plain, nil
	}
	k, err := f.key(ctx, owner, true)
	if err != nil {
		return "", err
	}
	b, err := f.sealer.Seal(ctx, k, record, field, []byte(plain))
	if err != nil {
		return "", err
	}
	return SealedPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Open returns the plaintext of a stored value: a sealed one decrypted
// (ErrErased when its owner's key was destroyed), one stored in clear as
// it is.
func (f *Fields) Open(ctx context.Context, owner, record, field, stored string) (string, error) {
	if !IsSealed(stored) {
		return stored, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(stored[len(SealedPrefix):])
	if err != nil {
		return "", ErrFormat
	}
	k, err := f.key(ctx, owner, false)
	if err != nil {
		return "", err
	}
	plain, err := f.sealer.Open(ctx, k, record, field, b)
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// IsSealed reports whether a stored value was sealed.
func IsSealed(stored string) bool { return strings.HasPrefix(stored, SealedPrefix) }

// Refresh reads owners' keys from the vault again, in one read: a key
// another node destroyed since this one cached it is then known here as
// destroyed (Open gives ErrErased), instead of when the cache evicts it.
// Readers that show personal data call it before opening.
func (f *Fields) Refresh(ctx context.Context, owners []string) error {
	if len(owners) == 0 {
		return nil
	}
	found, err := f.vault.Keys(ctx, owners)
	if err != nil {
		return fmt.Errorf("seal: read data keys: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range owners {
		k, ok := found[o]
		switch {
		case !ok:
			delete(f.keys, o) // none yet: asked again on next use
		case k.Wrapped == nil:
			f.rememberLocked(o, Key{Owner: o})
			f.sealer.Forget(o)
		default:
			f.rememberLocked(o, k)
		}
	}
	return nil
}

// Destroy destroys owner's data key in the vault and forgets it here:
// every value sealed for owner, wherever a copy of it lives, no longer
// opens. Other nodes drop it from memory when their cache evicts it.
func (f *Fields) Destroy(ctx context.Context, owner string) error {
	if err := f.vault.DeleteKey(ctx, owner); err != nil {
		return fmt.Errorf("seal: destroy data key: %w", err)
	}
	f.mu.Lock()
	f.rememberLocked(owner, Key{Owner: owner})
	f.mu.Unlock()
	f.sealer.Forget(owner)
	return nil
}

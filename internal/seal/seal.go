// Package seal is envelope encryption for personal data: a field is
// encrypted with AES-256-GCM under a data key of its owner (one per
// account), and the data key is stored wrapped by a key-encryption key (KEK)
// that a Provider holds (a keyring file, an HSM, a KMS) and never hands out.
//
// Destroying an owner's wrapped data key makes every ciphertext under it
// unreadable wherever copies of it live (backups, event streams): that is
// how an account is erased (crypto-shredding).
//
// Formats (all integers big-endian):
//
//	sealed field:  0x01 | data key id (uint32) | nonce (12) | AES-GCM ciphertext+tag
//	               associated data: "mj-seal-v1" | len(record) (uvarint) | record | field
//
// The record id and field name are bound as associated data, so a
// ciphertext copied to another row or column does not open. A data key is
// wrapped with its owner id as associated data, so a wrapped key moved to
// another account does not unwrap.
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Provider holds key-encryption keys and wraps data keys under them. A
// wrapped key names the KEK version it is under, so old versions stay
// readable after a rotation. Implementations are safe for concurrent use.
type Provider interface {
	// Wrap encrypts plain under the current KEK, binding aad.
	Wrap(ctx context.Context, plain, aad []byte) ([]byte, error)
	// Unwrap decrypts a key Wrap made under any KEK version the provider
	// still holds. A wrong aad or a changed byte is ErrOpen.
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
	// Version names the KEK a wrapped key is under.
	Version(wrapped []byte) (string, error)
	// Current names the KEK Wrap uses now.
	Current(ctx context.Context) (string, error)
}

// Errors. ErrOpen covers every reason a ciphertext does not open (wrong
// key, wrong record, tampered bytes) on purpose: a caller learns nothing
// more from it.
var (
	ErrOpen   = errors.New("seal: ciphertext does not open")
	ErrFormat = errors.New("seal: not a sealed value")
)

// KeySize is the size of data keys and KEKs: AES-256.
const KeySize = 32

const (
	formatV1  = 0x01
	headerLen = 1 + 4 + 12
	aadPrefix = "mj-seal-v1"
)

// Key is an owner's data key as stored: wrapped. ID names it inside every
// ciphertext made with it.
type Key struct {
	Owner   string
	ID      uint32
	Wrapped []byte
}

// Sealer seals and opens fields with owners' data keys. Unwrapped data
// keys are cached (at most cacheMax; when full, an arbitrary entry is
// dropped), so a provider round trip is paid once per owner, not per field.
type Sealer struct {
	p        Provider
	cacheMax int

	mu    sync.Mutex
	cache map[cacheKey]cipher.AEAD
}

type cacheKey struct {
	owner string
	id    uint32
}

// New returns a Sealer over p that caches up to cacheMax unwrapped keys.
func New(p Provider, cacheMax int) *Sealer {
	return &Sealer{p: p, cacheMax: max(cacheMax, 1), cache: map[cacheKey]cipher.AEAD{}}
}

// NewKey makes a data key for owner, wrapped by the provider.
func (s *Sealer) NewKey(ctx context.Context, owner string, id uint32) (Key, error) {
	plain := make([]byte, KeySize)
	if _, err := rand.Read(plain); err != nil {
		return Key{}, err
	}
	w, err := s.p.Wrap(ctx, plain, ownerAAD(owner))
	if err != nil {
		return Key{}, fmt.Errorf("seal: wrap data key: %w", err)
	}
	aead, err := newAEAD(plain)
	if err != nil {
		return Key{}, err
	}
	s.remember(cacheKey{owner, id}, aead)
	return Key{Owner: owner, ID: id, Wrapped: w}, nil
}

// Seal encrypts plain for field of record under k.
func (s *Sealer) Seal(ctx context.Context, k Key, record, field string, plain []byte) ([]byte, error) {
	aead, err := s.aead(ctx, k)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerLen, headerLen+len(plain)+aead.Overhead())
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:5], k.ID)
	if _, err := rand.Read(out[5:headerLen]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[5:headerLen], plain, fieldAAD(record, field)), nil
}

// Open decrypts what Seal made for the same record and field under k.
func (s *Sealer) Open(ctx context.Context, k Key, record, field string, sealed []byte) ([]byte, error) {
	id, err := KeyID(sealed)
	if err != nil {
		return nil, err
	}
	if id != k.ID {
		return nil, fmt.Errorf("%w: sealed under data key %d, given %d", ErrOpen, id, k.ID)
	}
	aead, err := s.aead(ctx, k)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, sealed[5:headerLen], sealed[headerLen:], fieldAAD(record, field))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// KeyID reads which data key a sealed value is under.
func KeyID(sealed []byte) (uint32, error) {
	if len(sealed) < headerLen+16 || sealed[0] != formatV1 {
		return 0, ErrFormat
	}
	return binary.BigEndian.Uint32(sealed[1:5]), nil
}

// Rewrap wraps k's data key again under the provider's current KEK. It
// reports false (and k unchanged) when k is already under it.
func (s *Sealer) Rewrap(ctx context.Context, k Key) (Key, bool, error) {
	cur, err := s.p.Current(ctx)
	if err != nil {
		return k, false, err
	}
	if v, err := s.p.Version(k.Wrapped); err != nil {
		return k, false, err
	} else if v == cur {
		return k, false, nil
	}
	plain, err := s.p.Unwrap(ctx, k.Wrapped, ownerAAD(k.Owner))
	if err != nil {
		return k, false, err
	}
	w, err := s.p.Wrap(ctx, plain, ownerAAD(k.Owner))
	clear(plain)
	if err != nil {
		return k, false, err
	}
	k.Wrapped = w
	return k, true, nil
}

// Forget drops an owner's unwrapped keys from the cache (after the owner's
// wrapped keys were destroyed).
func (s *Sealer) Forget(owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ck := range s.cache {
		if ck.owner == owner {
			delete(s.cache, ck)
		}
	}
}

func (s *Sealer) aead(ctx context.Context, k Key) (cipher.AEAD, error) {
	ck := cacheKey{k.Owner, k.ID}
	s.mu.Lock()
	aead, ok := s.cache[ck]
	s.mu.Unlock()
	if ok {
		return aead, nil
	}
	plain, err := s.p.Unwrap(ctx, k.Wrapped, ownerAAD(k.Owner))
	if err != nil {
		return nil, fmt.Errorf("seal: unwrap data key of %q: %w", k.Owner, err)
	}
	if len(plain) != KeySize {
		return nil, fmt.Errorf("seal: data key of %q is %d bytes", k.Owner, len(plain))
	}
	aead, err = newAEAD(plain)
	clear(plain)
	if err != nil {
		return nil, err
	}
	s.remember(ck, aead)
	return aead, nil
}

func (s *Sealer) remember(ck cacheKey, aead cipher.AEAD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= s.cacheMax {
		for old := range s.cache { // map order: an arbitrary entry
			delete(s.cache, old)
			break
		}
	}
	s.cache[ck] = aead
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func ownerAAD(owner string) []byte { return []byte("mj-seal-owner-v1|" + owner) }

func fieldAAD(record, field string) []byte {
	b := make([]byte, 0, len(aadPrefix)+binary.MaxVarintLen64+len(record)+len(field))
	b = append(b, aadPrefix...)
	b = binary.AppendUvarint(b, uint64(len(record)))
	b = append(b, record...)
	return append(b, field...)
}

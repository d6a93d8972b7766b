package seal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Index computes blind indexes: a keyed hash of a normalised value (an
// email) that a unique column and a lookup can use in place of the
// plaintext. Without the index key the hashes cannot be tested against
// guesses. The index key is one for the whole deployment (every node must
// find the same row), stored wrapped by the provider; it is not rotated
// with the KEKs (rotating it means recomputing every index).
type Index struct {
	key []byte
}

const indexAAD = "mj-seal-index-v1"

// NewIndexKey makes an index key and returns it wrapped, for the caller
// to store.
func NewIndexKey(ctx context.Context, p Provider) ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	defer clear(k)
	return p.Wrap(ctx, k, []byte(indexAAD))
}

// OpenIndex unwraps an index key made by NewIndexKey.
func OpenIndex(ctx context.Context, p Provider, wrapped []byte) (*Index, error) {
	k, err := p.Unwrap(ctx, wrapped, []byte(indexAAD))
	if err != nil {
		return nil, fmt.Errorf("seal: unwrap index key: %w", err)
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("seal: index key is %d bytes", len(k))
	}
	return &Index{key: k}, nil
}

// Sum is the blind index of value in field: HMAC-SHA256 over the field
// name and the value, so equal values in different fields do not match.
func (x *Index) Sum(field, value string) []byte {
	m := hmac.New(sha256.New, x.key)
	var n [binary.MaxVarintLen64]byte
	m.Write(n[:binary.PutUvarint(n[:], uint64(len(field)))])
	m.Write([]byte(field))
	m.Write([]byte(value))
	return m.Sum(nil)
}

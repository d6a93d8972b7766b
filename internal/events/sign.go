package events

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/multijuego/multijuego/internal/seal"
)

// HeaderSignature carries an event's signature: "v1=" and the unpadded
// base64url HMAC-SHA256 of the message data under the signing key.
const HeaderSignature = "Mj-Signature"

// MinKeyBytes is the shortest signing key accepted.
const MinKeyBytes = 32

var (
	// ErrUnsigned: an event without a signature.
	ErrUnsigned = errors.New("events: unsigned event (not from a game node of this deployment)")
	// ErrBadSignature: an event whose signature does not match its data
	// under this deployment's key.
	ErrBadSignature = errors.New("events: bad event signature (forged, altered, or signed with another key)")
)

// Signer signs events (game nodes) and checks their signatures
// (persistence) with HMAC-SHA256 under one key that the game nodes and the
// persistence nodes share, and nobody else holds. The bus permissions let
// only game nodes publish events; the signature is the second lock: an
// event published by anyone without the key (a leaked or over-permitted
// NATS credential, an operator's replay of something edited) is refused
// by persistence and dead-lettered. A dead letter keeps its signature, so
// a genuine event replayed from the dead-letter queue still passes.
type Signer struct{ key []byte }

// NewSigner returns a Signer with key (at least MinKeyBytes).
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("events: signing key of %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// Sign returns the HeaderSignature value for data.
func (s *Signer) Sign(data []byte) string {
	m := hmac.New(sha256.New, s.key)
	m.Write(data)
	return "v1=" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks sig, a HeaderSignature value, against data: nil,
// ErrUnsigned or ErrBadSignature.
func (s *Signer) Verify(data []byte, sig string) error {
	if sig == "" {
		return ErrUnsigned
	}
	b64, ok := strings.CutPrefix(sig, "v1=")
	got, err := base64.RawURLEncoding.Strict().DecodeString(b64)
	if !ok || err != nil || len(got) != sha256.Size {
		return ErrBadSignature
	}
	m := hmac.New(sha256.New, s.key)
	m.Write(data)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// KeySealer keeps a secret of the bus sealed at rest (the signing key,
// the embedded server's users file): auth.LineSealer with the
// deployment's key provider (seal.provider), as the token signing keys
// are.
type KeySealer interface {
	SealLine(ctx context.Context, secret []byte) (string, error)
	// OpenLine reports sealed false for a line it did not seal.
	OpenLine(ctx context.Context, line string) (secret []byte, sealed bool, err error)
}

// LoadSigningKey reads a signing key file: one line, sealed by ks, or in
// clear as hex (at least 64 digits, what `openssl rand -hex 32` makes).
// The file must be its owner's only (seal.PrivateFile: a read-only
// Secret mount readable by its group is accepted). ks nil reads clear
// keys only. It reports whether the key was in clear.
func LoadSigningKey(ctx context.Context, path string, ks KeySealer) (s *Signer, inClear bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("events: signing key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		if err := seal.PrivateFile(path, fi.Mode().Perm()); err != nil {
			return nil, false, fmt.Errorf("events: signing key: %w", err)
		}
	}
	var key []byte
	sealed := false
	if ks != nil {
		if key, sealed, err = ks.OpenLine(ctx, string(b)); err != nil {
			return nil, false, fmt.Errorf("events: signing key %s: %w", path, err)
		}
	}
	if !sealed {
		if key, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil {
			return nil, false, fmt.Errorf("events: signing key %s: not hex: %w", path, err)
		}
	}
	if s, err = NewSigner(key); err != nil {
		return nil, false, fmt.Errorf("%w (%s)", err, path)
	}
	return s, !sealed, nil
}

// LoadOrCreateSigningKey is LoadSigningKey for a key file this process
// owns (a deployment whose game and persistence roles share one data
// directory): it makes the file (32 random bytes, sealed by ks, mode
// 0600) when it does not exist, and rewrites a key found in clear sealed.
// ks nil keeps the key in clear (tests).
func LoadOrCreateSigningKey(ctx context.Context, path string, ks KeySealer) (*Signer, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		line, err := keyLine(ctx, key, ks)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("events: signing key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("events: signing key: %w", err)
		}
		if err == nil {
			_, werr := f.WriteString(line)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return nil, fmt.Errorf("events: signing key: %w", werr)
			}
		}
	}
	s, inClear, err := LoadSigningKey(ctx, path, ks)
	if err != nil || !inClear || ks == nil {
		return s, err
	}
	line, err := keyLine(ctx, s.key, ks)
	if err != nil {
		return nil, err
	}
	if err := replaceFile(path, []byte(line)); err != nil {
		return nil, fmt.Errorf("events: reseal the signing key: %w", err)
	}
	return s, nil
}

// ResealSigningKey seals the signing key file at path again with ks, under
// the key provider's current key-encryption key (after a rotation). It
// reports false when there is no file.
func ResealSigningKey(ctx context.Context, path string, ks KeySealer) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	s, _, err := LoadSigningKey(ctx, path, ks)
	if err != nil {
		return false, err
	}
	line, err := keyLine(ctx, s.key, ks)
	if err != nil {
		return false, err
	}
	if err := replaceFile(path, []byte(line)); err != nil {
		return false, fmt.Errorf("events: reseal the signing key: %w", err)
	}
	return true, nil
}

// replaceFile writes b to path (mode 0600) through a temporary file and a
// rename, so a reader sees the old content or the new, never a part.
func replaceFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}

// keyLine is a key file's content: sealed by ks, or hex without one.
func keyLine(ctx context.Context, key []byte, ks KeySealer) (string, error) {
	if ks == nil {
		return hex.EncodeToString(key) + "\n", nil
	}
	line, err := ks.SealLine(ctx, key)
	if err != nil {
		return "", fmt.Errorf("events: seal the signing key: %w", err)
	}
	return line + "\n", nil
}

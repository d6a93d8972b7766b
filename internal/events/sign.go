package events

import (
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

// LoadSigningKey reads a signing key file: hex (at least 64 digits, what
// LoadOrCreateSigningKey writes and `openssl rand -hex 32` makes), one
// line. The file must not be readable by group or others.
func LoadSigningKey(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("events: signing key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("events: signing key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("events: signing key %s: not hex: %w", path, err)
	}
	s, err := NewSigner(key)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return s, nil
}

// LoadOrCreateSigningKey is LoadSigningKey, making the file (32 random
// bytes, mode 0600) when it does not exist: for a deployment whose game
// and persistence roles share one data directory.
func LoadOrCreateSigningKey(path string) (*Signer, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("events: signing key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("events: signing key: %w", err)
		}
		if err == nil {
			_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return nil, fmt.Errorf("events: signing key: %w", werr)
			}
		}
	}
	return LoadSigningKey(path)
}

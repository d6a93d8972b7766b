package seal

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Local is the default Provider: key-encryption keys in a keyring file
// (JSON, mode 0600, in the data dir), AES-256-GCM wrapping. It protects
// data in the database, its backups and the event streams from whoever
// holds those without the keyring file; a KMS or an HSM also protects the
// KEKs from whoever holds the host's disk.
//
// Wrapped key format: 'L' | 0x01 | KEK version (uint32) | nonce (12) |
// ciphertext+tag. `multijuego keys rotate` (Rotate) adds a version to the
// file; a running process notices the change on its next Wrap (it stats
// the file) or on a key under a version it does not know yet.
type Local struct {
	path string

	mu    sync.Mutex
	ring  keyring
	stamp fileStamp
}

type keyring struct {
	Current uint32       `json:"current"`
	Keys    []keyringKey `json:"keys"`
}

type keyringKey struct {
	Version uint32    `json:"version"`
	Created time.Time `json:"created"`
	Key     []byte    `json:"key"` // base64 in JSON
}

type fileStamp struct {
	mod  time.Time
	size int64
}

const (
	localMagic     = 'L'
	localFormatV1  = 0x01
	localHeaderLen = 2 + 4 + 12
)

// OpenLocal opens the keyring at path, creating it with one KEK if it does
// not exist. Processes starting together on a shared directory agree: the
// file is created exclusively, and the losers read the winner's. A keyring
// readable by others is tightened to 0600.
func OpenLocal(path string) (*Local, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := writeKeyring(path, keyring{}, time.Now(), true); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	l := &Local{path: path}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Rotate adds a new KEK to the keyring at path and makes it current. Keys
// wrapped under older versions stay readable. It returns the new version.
func Rotate(path string, now time.Time) (uint32, error) {
	ring, err := readKeyring(path)
	if err != nil {
		return 0, err
	}
	if err := writeKeyring(path, ring, now, false); err != nil {
		return 0, err
	}
	return ring.Current + 1, nil
}

// writeKeyring writes ring plus one new current KEK, atomically; with
// create, only if path does not exist (os.ErrExist otherwise).
func writeKeyring(path string, ring keyring, now time.Time, create bool) error {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return err
	}
	ring.Current++
	ring.Keys = append(ring.Keys, keyringKey{Version: ring.Current, Created: now.UTC(), Key: k})
	b, err := json.MarshalIndent(ring, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyring-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if create {
		return os.Link(tmp.Name(), path) // fails if another process made it first
	}
	return os.Rename(tmp.Name(), path)
}

func readKeyring(path string) (keyring, error) {
	var ring keyring
	b, err := os.ReadFile(path)
	if err != nil {
		return ring, err
	}
	if err := json.Unmarshal(b, &ring); err != nil {
		return ring, fmt.Errorf("seal: keyring %s: %w", path, err)
	}
	if err := ring.check(); err != nil {
		return ring, fmt.Errorf("seal: keyring %s: %w", path, err)
	}
	return ring, nil
}

func (r keyring) check() error {
	seen := map[uint32]bool{}
	for _, k := range r.Keys {
		if len(k.Key) != KeySize {
			return fmt.Errorf("key version %d is %d bytes, want %d", k.Version, len(k.Key), KeySize)
		}
		if seen[k.Version] {
			return fmt.Errorf("key version %d appears twice", k.Version)
		}
		seen[k.Version] = true
	}
	if !seen[r.Current] {
		return fmt.Errorf("current version %d has no key", r.Current)
	}
	return nil
}

// reload re-reads the file when it changed. Callers hold l.mu.
func (l *Local) reload() error {
	st, err := os.Stat(l.path)
	if err != nil {
		return err
	}
	if err := PrivateFile(l.path, st.Mode().Perm()); err != nil {
		return err
	}
	stamp := fileStamp{st.ModTime(), st.Size()}
	if stamp == l.stamp {
		return nil
	}
	ring, err := readKeyring(l.path)
	if err != nil {
		return err
	}
	l.ring, l.stamp = ring, stamp
	return nil
}

func (l *Local) key(v uint32) []byte {
	for _, k := range l.ring.Keys {
		if k.Version == v {
			return k.Key
		}
	}
	return nil
}

// Wrap implements Provider.
func (l *Local) Wrap(_ context.Context, plain, aad []byte) ([]byte, error) {
	l.mu.Lock()
	err := l.reload()
	v := l.ring.Current
	kek := l.key(v)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, localHeaderLen, localHeaderLen+len(plain)+aead.Overhead())
	out[0], out[1] = localMagic, localFormatV1
	binary.BigEndian.PutUint32(out[2:6], v)
	if _, err := rand.Read(out[6:localHeaderLen]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[6:localHeaderLen], plain, aad), nil
}

// Unwrap implements Provider.
func (l *Local) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	v, err := localVersion(wrapped)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	kek := l.key(v)
	if kek == nil { // rotated by another process since we last looked?
		err = l.reload()
		kek = l.key(v)
	}
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if kek == nil {
		return nil, fmt.Errorf("%w: key-encryption key version %d is not in the keyring", ErrOpen, v)
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, wrapped[6:localHeaderLen], wrapped[localHeaderLen:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// Version implements Provider.
func (l *Local) Version(wrapped []byte) (string, error) {
	v, err := localVersion(wrapped)
	if err != nil {
		return "", err
	}
	return "local:" + strconv.FormatUint(uint64(v), 10), nil
}

// Current implements Provider.
func (l *Local) Current(context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reload(); err != nil {
		return "", err
	}
	return "local:" + strconv.FormatUint(uint64(l.ring.Current), 10), nil
}

func localVersion(wrapped []byte) (uint32, error) {
	if len(wrapped) < localHeaderLen+16 || wrapped[0] != localMagic || wrapped[1] != localFormatV1 {
		return 0, ErrFormat
	}
	return binary.BigEndian.Uint32(wrapped[2:6]), nil
}

// PrivateFile checks that a file holding a secret is its owner's only, and
// tightens it to 0600 when it is writable and open to others. A read-only
// file readable by its group (0440, 0400: a Kubernetes Secret mounted with
// fsGroup for a non-root process) is accepted as it is; one readable or
// writable by others, or writable by its group, is refused.
func PrivateFile(path string, perm fs.FileMode) error {
	switch {
	case perm&0o077 == 0:
		return nil
	case perm&0o222 == 0 && perm&0o037 == 0:
		return nil // read-only, group may read: a mounted Secret
	case perm&0o200 != 0:
		if err := os.Chmod(path, 0o600); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s is open to others (mode %v) and cannot be tightened: make it 0600, or 0440 read-only", path, perm)
}

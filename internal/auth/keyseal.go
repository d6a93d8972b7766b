package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// Wrapper seals secrets at rest under a key-encryption key it holds
// (seal.Provider: a keyring file, an HSM, a KMS).
type Wrapper interface {
	Wrap(ctx context.Context, plain, aad []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// KeysDir is the directory of the signing keys and the device-id secret,
// and the Wrapper that seals them in their files. With a nil Seal they are
// written in clear (tests only; the server always passes its provider).
//
// Files written in clear (before sealing existed, or by hand) are read as
// they are and rewritten sealed when the directory is writable; a
// read-only directory (a Kubernetes Secret) keeps working in clear.
type KeysDir struct {
	Path string
	Seal Wrapper
}

// wrapTimeout bounds one provider call made while loading keys (a KMS
// round trip).
const wrapTimeout = 5 * time.Second

func signingAAD(kid string) []byte { return []byte("mj-signing-key|" + kid) }

var deviceAAD = []byte("mj-device-id-key")

const sealedPrefix = "sealed:"

// unseal opens a sealed secret.
func (d KeysDir) unseal(sealed, aad []byte) ([]byte, error) {
	if d.Seal == nil {
		return nil, errors.New("keys: the key is sealed and no key provider is configured")
	}
	ctx, cancel := context.WithTimeout(context.Background(), wrapTimeout)
	defer cancel()
	return d.Seal.Unwrap(ctx, sealed, aad)
}

// seal seals a secret, or reports false when there is no Wrapper.
func (d KeysDir) seal(plain, aad []byte) ([]byte, bool, error) {
	if d.Seal == nil {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), wrapTimeout)
	defer cancel()
	w, err := d.Seal.Wrap(ctx, plain, aad)
	return w, err == nil, err
}

// sealInPlace rewrites the clear signing keys of files sealed. A directory
// it may not write is left as it is.
func (d KeysDir) sealInPlace(files []keyFile) error {
	for _, kf := range files {
		if !kf.inClear || d.Seal == nil {
			continue
		}
		if err := d.writeKeyFile(kf, false); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
	}
	return nil
}

// LineSealer keeps a secret sealed in a one-line file: "sealed:" and the
// base64 of the secret wrapped by W with AAD bound (AAD names the secret,
// so a sealed line copied into another secret's file does not open). The
// device-id secret is kept so, and so is the events signing key
// (internal/app).
type LineSealer struct {
	W   Wrapper
	AAD []byte
}

// SealLine seals secret into its line (without a newline).
func (s LineSealer) SealLine(ctx context.Context, secret []byte) (string, error) {
	if s.W == nil {
		return "", errors.New("keys: no key provider to seal with")
	}
	w, err := s.W.Wrap(ctx, secret, s.AAD)
	if err != nil {
		return "", err
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(w), nil
}

// OpenLine opens a line SealLine wrote. A line that is not sealed comes
// back with sealed false and no secret, for the caller to read in its
// clear format.
func (s LineSealer) OpenLine(ctx context.Context, line string) (secret []byte, sealed bool, err error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(line), sealedPrefix)
	if !ok {
		return nil, false, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, true, fmt.Errorf("keys: sealed secret: %w", err)
	}
	if s.W == nil {
		return nil, true, errors.New("keys: the key is sealed and no key provider is configured")
	}
	secret, err = s.W.Unwrap(ctx, raw, s.AAD)
	return secret, true, err
}

// encodeDeviceKey is the device-id secret's file content.
func (d KeysDir) encodeDeviceKey(key []byte) (string, error) {
	if d.Seal == nil {
		return base64.StdEncoding.EncodeToString(key) + "\n", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), wrapTimeout)
	defer cancel()
	line, err := LineSealer{W: d.Seal, AAD: deviceAAD}.SealLine(ctx, key)
	if err != nil {
		return "", fmt.Errorf("keys: seal the device-id secret: %w", err)
	}
	return line + "\n", nil
}

// decodeDeviceKey reads the device-id secret's file content; clear says
// it was stored in clear.
func (d KeysDir) decodeDeviceKey(data string) (key []byte, clear bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), wrapTimeout)
	defer cancel()
	key, sealed, err := LineSealer{W: d.Seal, AAD: deviceAAD}.OpenLine(ctx, data)
	if sealed {
		return key, false, err
	}
	key, err = base64.StdEncoding.DecodeString(strings.TrimSpace(data))
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// Rewrap writes every signing key and the device-id secret of d again,
// sealed under the provider's current key-encryption key (after `keys
// rotate-kek`, and to seal keys written in clear). It returns how many
// files it wrote.
func (d KeysDir) Rewrap() (int, error) {
	if d.Seal == nil {
		return 0, errors.New("keys: no key provider to seal with")
	}
	files, err := d.readKeys()
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // no keys yet: the first start makes them sealed
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, kf := range files {
		if err := d.writeKeyFile(kf, false); err != nil {
			return n, err
		}
		n++
	}
	key, err := readDeviceKey(d)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return n, nil
	case err != nil:
		return n, err
	}
	return n + 1, d.rewriteDeviceKey(key)
}

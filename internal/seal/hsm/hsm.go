// Package hsm is the seal.Provider on a hardware security module, through
// PKCS#11: key-encryption keys are AES-256 keys made inside the token,
// marked sensitive and not extractable, so they never leave it; data keys
// are wrapped and unwrapped by the token with AES-GCM (CKM_AES_GCM).
//
// A KEK is a secret-key object labelled Options.KeyLabel whose CKA_ID is
// its version (uint32, big-endian). The current KEK is the highest
// version; Rotate makes the next one in the token, and older ones stay
// usable for Unwrap. Two processes that make the same version at once
// (two nodes starting on an empty token) leave two objects with one id:
// Wrap uses either and Unwrap tries each, so nothing breaks.
//
// Wrapped key format: 'P' | 0x01 | KEK version (uint32) | IV (12) |
// ciphertext+tag (16). The IV is the one the token reports after the
// operation (some HSMs choose their own).
//
// When the token answers that a session, the login or the token itself
// went away (the HSM restarted, failed over, or something in the process
// closed the sessions or finalized the library), the provider reopens:
// it initializes the library again if needed, opens a session on the
// token (found by its label, so it may have moved to another slot), logs
// in, looks its keys up again (their handles may have changed) and tries
// the operation once more. One caller reopens at a time; the others wait
// for it and use its sessions. If the retry fails too, that error is
// returned, saying so. The list of answers that reopen is in reopen.go.
//
// The PKCS#11 binding needs cgo; a binary built with CGO_ENABLED=0 gets
// ErrNoCgo from Open.
package hsm

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/multijuego/multijuego/internal/seal"
)

// Options configures Open.
type Options struct {
	// Module is the path of the PKCS#11 library (for SoftHSM2:
	// /usr/lib/softhsm/libsofthsm2.so).
	Module string
	// Token is the label of the token holding the keys.
	Token string
	// PIN is the token's user PIN.
	PIN string
	// KeyLabel labels the KEK objects (empty: DefaultKeyLabel).
	KeyLabel string
	// Sessions bounds the concurrent operations on the token (0: 4).
	Sessions int
	// Refresh is how old the list of KEKs may be before Wrap and Current
	// look in the token again for one another process made (0: 30s). An
	// Unwrap under a version not yet seen looks at once.
	Refresh time.Duration
	// Logger gets a line for each time the provider reopens its sessions
	// on the token (nil: no log).
	Logger *slog.Logger
}

// DefaultKeyLabel labels the KEK objects when Options.KeyLabel is empty.
const DefaultKeyLabel = "multijuego-kek"

// ErrNoCgo is Open's error in a binary built without cgo.
var ErrNoCgo = errors.New("hsm: the pkcs11 provider needs a build with cgo (this binary was built with CGO_ENABLED=0)")

const (
	magic     = 'P'
	formatV1  = 0x01
	ivLen     = 12
	tagLen    = 16
	headerLen = 2 + 4 + ivLen
)

func (o Options) withDefaults() Options {
	if o.KeyLabel == "" {
		o.KeyLabel = DefaultKeyLabel
	}
	if o.Sessions <= 0 {
		o.Sessions = 4
	}
	if o.Refresh <= 0 {
		o.Refresh = 30 * time.Second
	}
	return o
}

// versionOf reads the KEK version of a wrapped key.
func versionOf(wrapped []byte) (uint32, error) {
	if len(wrapped) < headerLen+tagLen || wrapped[0] != magic || wrapped[1] != formatV1 {
		return 0, seal.ErrFormat
	}
	return binary.BigEndian.Uint32(wrapped[2:6]), nil
}

func versionName(v uint32) string { return "pkcs11:" + strconv.FormatUint(uint64(v), 10) }

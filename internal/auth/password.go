package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/multijuego/multijuego/internal/errcode"
)

// Argon2Params are the argon2id cost parameters. The defaults are OWASP's
// first recommendation: m=19 MiB, t=2, p=1.
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// ErrBusy is returned when too many password hashes are already queued.
var ErrBusy = &errcode.Error{Code: errcode.Unavailable, Message: "The server is busy, try again shortly.", RetryAfter: time.Second}

// Hasher hashes and verifies passwords with argon2id. At most Concurrency
// hashes run at once, so a login flood cannot take every core; at most
// MaxWaiting more wait for a slot, and beyond that callers get ErrBusy at once
// (the overflow rule), as do waiters whose context ends first.
type Hasher struct {
	params     Argon2Params
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	dummy      string // a real hash of a random password: verifying against it costs what a real check costs
	running    atomic.Int64
}

// NewHasher returns a hasher that runs at most concurrency hashes at once.
func NewHasher(p Argon2Params, concurrency, maxWaiting int) *Hasher {
	if concurrency < 1 {
		concurrency = 1
	}
	h := &Hasher{params: p, slots: make(chan struct{}, concurrency), maxWaiting: int64(maxWaiting)}
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	h.dummy = h.hashNow(pw[:])
	return h
}

// Running reports how many hashes run now (for metrics).
func (h *Hasher) Running() int64 { return h.running.Load() }

// Waiting reports how many callers wait for a slot (for metrics).
func (h *Hasher) Waiting() int64 { return h.waiting.Load() }

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > h.maxWaiting {
		h.waiting.Add(-1)
		return ErrBusy
	}
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ErrBusy
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC string of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hashNow([]byte(password)), nil
}

func (h *Hasher) hashNow(password []byte) string {
	h.running.Add(1)
	defer h.running.Add(-1)
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	p := h.params
	key := argon2.IDKey(password, salt, p.Iterations, p.MemoryKiB, p.Parallelism, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches the PHC string encoded. An empty
// encoded (unknown user, or an account without a password) is checked
// against a dummy hash so it costs the same time and still returns false.
// needsRehash is true when the hash used other parameters than the current.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	h.running.Add(1)
	defer h.running.Add(-1)
	target := encoded
	if target == "" {
		target = h.dummy
	}
	p, salt, want, perr := decodePHC(target)
	if perr != nil {
		// A corrupt stored hash must not be faster than a real check.
		p, salt, want, _ = decodePHC(h.dummy)
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	match := subtle.ConstantTimeCompare(got, want) == 1
	if encoded == "" || perr != nil {
		return false, false, nil
	}
	return match, match && p != h.params, nil
}

var errPHC = errors.New("auth: not an argon2id PHC string")

func decodePHC(s string) (Argon2Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return Argon2Params{}, nil, nil, errPHC
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return Argon2Params{}, nil, nil, errPHC
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > 4<<20 || p.Iterations < 1 || p.Iterations > 100 || p.Parallelism < 1 {
		return Argon2Params{}, nil, nil, errPHC
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return Argon2Params{}, nil, nil, errPHC
	}
	return p, salt, key, nil
}

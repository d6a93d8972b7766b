//go:build unix

package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockStore takes an exclusive lock on the embedded server's store
// directory, held until release: two servers writing one JetStream store
// corrupt it, and nothing in nats-server stops a second one (a second
// `multijuego serve`, or `multijuego backup` without --nats-url while the
// server runs). The lock is the kernel's (flock): it ends with the
// process, so a crash leaves nothing to clean up.
func lockStore(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("events: %w: %s is locked by a running server", ErrStoreInUse, dir)
		}
		return nil, fmt.Errorf("events: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

//go:build unix

package ratelimit_test

import (
	"context"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/ratelimit"
)

// A SIGHUP reloads the lists even when the files look unchanged (Unix
// only: Windows has no SIGHUP to send).

func TestWatchIPListsOnSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deny")
	mtime := time.Unix(1000, 0)
	writeList(t, path, "203.0.113.7\n", mtime)
	l, err := ratelimit.LoadIPList(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Catch SIGHUP here too, so a signal sent before the watcher
	// registers cannot end the test binary.
	hup := make(chan os.Signal, 16)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ratelimit.WatchIPLists(ctx, time.Hour, l) }() // no polling: only the signal
	defer func() {
		cancel()
		<-done
	}()
	// Same mtime and size: only a forced (SIGHUP) reload sees it.
	writeList(t, path, "198.51.10.1\n", mtime)
	b := netip.MustParseAddr("198.51.10.1")
	deadline := time.Now().Add(5 * time.Second)
	for !l.Contains(b) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the list")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

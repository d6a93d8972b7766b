package gateway

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/multijuego/multijuego/internal/certs"
)

// reloadOnHangup re-reads the TLS certificate on SIGHUP (changes to the
// files are also noticed on their own, within a second of a handshake)
// until ctx ends or stop is called; stop waits for its goroutine. On
// Windows no SIGHUP ever arrives.
func reloadOnHangup(ctx context.Context, src *certs.Source, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := src.Reload(); err != nil {
					log.Error("SIGHUP: TLS certificate not reloaded; the previous one stays in use", "err", err)
				} else {
					log.Info("SIGHUP: TLS certificate reloaded", "not_after", src.Leaf().NotAfter)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

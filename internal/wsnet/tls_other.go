//go:build !linux

package wsnet

import (
	"crypto/tls"
	"net"
)

// ListenTLS returns a TLS listener on ln whose upgraded sockets the
// transport serves; without the epoll backend that is tls.NewListener.
func ListenTLS(ln net.Listener, cfg *tls.Config) net.Listener {
	return tls.NewListener(ln, cfg)
}

//go:build !linux

package wsnet

import "net"

// poller is the epoll backend, which exists only on Linux: elsewhere
// newPoller returns none and every socket takes the stream backend.
type poller struct{}

func newPoller(*Server) (*poller, error) { return nil, nil }

func epollable(net.Conn) bool { return false }

func (*poller) adopt(*Conn, net.Conn, []byte) (bool, error) { return false, nil }
func (*poller) stop()                                       {}
func (*poller) closeFDs()                                   {}

//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package wsnet

import "golang.org/x/sys/unix"

// canPeek: stream readers park on the raw socket (streamLink.readParked).
const canPeek = true

// peekReadable reports whether the socket has input, an EOF or an error
// for a Read to return, without taking any of it; it is the callback of
// syscall.RawConn.Read, which waits for readability while it says false.
func (l *streamLink) peekReadable(fd uintptr) bool {
	_, _, err := unix.Recvfrom(int(fd), l.peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err != unix.EAGAIN && err != unix.EINTR
}

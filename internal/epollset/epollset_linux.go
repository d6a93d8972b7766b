//go:build linux

package epollset

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Set is an epoll instance in the netpoller. Ctl and Wait may be called
// from any goroutine; Wait by one goroutine at a time.
type Set struct {
	fd   int
	file *os.File // fd, registered with the netpoller
	rc   syscall.RawConn
	// n and err carry the result of the non-blocking epoll_wait out of
	// the RawConn.Read callback (one waiter at a time).
	n    int
	err  error
	evs  []unix.EpollEvent
	poll func(fd uintptr) bool
}

// New creates a set; name labels its file (for debugging).
func New(name string) (*Set, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	s := &Set{fd: fd, file: os.NewFile(uintptr(fd), name)} // a non-blocking fd joins the netpoller
	if s.rc, err = s.file.SyscallConn(); err != nil {
		_ = s.file.Close()
		return nil, err
	}
	s.poll = func(fd uintptr) bool {
		s.n, s.err = unix.EpollWait(int(fd), s.evs, 0)
		return s.err != nil || s.n > 0 // false: nothing yet, park until readable
	}
	return s, nil
}

// Ctl is epoll_ctl on the set.
func (s *Set) Ctl(op, fd int, ev *unix.EpollEvent) error { return unix.EpollCtl(s.fd, op, fd, ev) }

// Wait fills events with ready events and returns how many, parking in
// the netpoller while there are none. It fails once the set is closed or
// its read deadline (SetDeadline) has passed; EINTR is retried.
func (s *Set) Wait(events []unix.EpollEvent) (int, error) {
	s.evs = events
	defer func() { s.evs = nil }()
	for {
		if err := s.rc.Read(s.poll); err != nil {
			return 0, err
		}
		if s.err != unix.EINTR {
			return s.n, s.err
		}
	}
}

// SetDeadline ends a Wait in progress, or the next one, at t (a past t:
// at once).
func (s *Set) SetDeadline(t time.Time) error { return s.file.SetReadDeadline(t) }

// Close closes the set (a Wait in progress returns an error).
func (s *Set) Close() error { return s.file.Close() }

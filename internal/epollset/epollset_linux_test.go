//go:build linux

package epollset

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Wait parks until a registered fd is readable, returns its event, and
// ends at a past deadline when nothing is ready.
func TestWaitAndDeadline(t *testing.T) {
	s, err := New("test-epoll")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := s.Ctl(unix.EPOLL_CTL_ADD, fds[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 42}); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	got := make(chan int32, 1)
	go func() {
		n, err := s.Wait(events)
		if err != nil || n != 1 {
			t.Errorf("Wait = %d, %v", n, err)
			got <- -1
			return
		}
		got <- events[0].Fd
	}()
	time.Sleep(20 * time.Millisecond) // the waiter parks first
	if _, err := unix.Write(fds[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case fd := <-got:
		if fd != 42 {
			t.Fatalf("event for %d, want 42", fd)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake for a readable fd")
	}

	var one [1]byte
	_, _ = unix.Read(fds[0], one[:]) // nothing ready any more
	if err := s.SetDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(events); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait past the deadline = %v, want os.ErrDeadlineExceeded", err)
	}
}

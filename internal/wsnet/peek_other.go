//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package wsnet

// canPeek: no non-blocking peek here (Windows sockets are blocking under
// Go's overlapped I/O), so stream readers block in Read with a buffer of
// their own (streamLink.readBlocking).
const canPeek = false

// peekReadable is not used where canPeek is false.
func (l *streamLink) peekReadable(uintptr) bool { return true }

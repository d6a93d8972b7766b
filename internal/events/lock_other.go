//go:build !unix

package events

// lockStore does not lock outside Unix: the operator keeps a second
// server (or an offline backup) off a running server's data directory.
func lockStore(string) (release func(), err error) { return func() {}, nil }

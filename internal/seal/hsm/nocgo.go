//go:build !cgo

package hsm

import "context"

// Provider is the PKCS#11 provider; without cgo it cannot be opened.
type Provider struct{}

// Open reports ErrNoCgo: the PKCS#11 binding needs cgo.
func Open(context.Context, Options) (*Provider, error) { return nil, ErrNoCgo }

// Wrap implements seal.Provider (never reached: Open fails).
func (*Provider) Wrap(context.Context, []byte, []byte) ([]byte, error) { return nil, ErrNoCgo }

// Unwrap implements seal.Provider (never reached: Open fails).
func (*Provider) Unwrap(context.Context, []byte, []byte) ([]byte, error) { return nil, ErrNoCgo }

// Version implements seal.Provider.
func (*Provider) Version(wrapped []byte) (string, error) {
	v, err := versionOf(wrapped)
	return versionName(v), err
}

// Current implements seal.Provider (never reached: Open fails).
func (*Provider) Current(context.Context) (string, error) { return "", ErrNoCgo }

// Rotate makes a new KEK (never reached: Open fails).
func (*Provider) Rotate(context.Context) (string, error) { return "", ErrNoCgo }

// Close releases nothing.
func (*Provider) Close() error { return nil }

// Reopens is always 0 (never reached: Open fails).
func (*Provider) Reopens() uint64 { return 0 }

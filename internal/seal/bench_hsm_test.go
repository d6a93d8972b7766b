//go:build cgo

package seal_test

import (
	"context"
	"testing"

	"github.com/multijuego/multijuego/internal/seal/hsm"
	"github.com/multijuego/multijuego/internal/seal/hsm/softhsmtest"
)

// BenchmarkPKCS11 is benchProvider on SoftHSM2 (in-process, a software
// token: a network HSM adds its round trip to NewKey and Unwrap).
func BenchmarkPKCS11(b *testing.B) {
	p, err := hsm.Open(context.Background(), softhsmtest.Token(b))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	benchProvider(b, p)
}

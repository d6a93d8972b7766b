//go:build !cgo

package hsm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/multijuego/multijuego/internal/seal/hsm"
)

func TestOpenWithoutCgo(t *testing.T) {
	if _, err := hsm.Open(context.Background(), hsm.Options{Module: "/usr/lib/softhsm/libsofthsm2.so"}); !errors.Is(err, hsm.ErrNoCgo) {
		t.Fatalf("Open = %v, want ErrNoCgo", err)
	}
}

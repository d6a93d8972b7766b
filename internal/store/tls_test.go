//go:build unix

package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
	"github.com/multijuego/multijuego/internal/tlstest"
)

// A PostgreSQL that takes only TLS: the store connects with
// sslmode=verify-full and the CA that signed the server, and is refused
// with a CA that did not, or without TLS.
func TestPostgresVerifyFull(t *testing.T) {
	pki := tlstest.NewPKI(t, t.TempDir())
	pg := storetest.StartPrivatePostgres(t, storetest.PrivateOptions{
		Conf:  []string{"ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"},
		HBA:   []string{"hostssl all all 127.0.0.1/32 trust", "host all all 127.0.0.1/32 reject"},
		Files: map[string]string{"server.crt": pki.ServerCert, "server.key": pki.ServerKey},
	})
	open := func(query string) error {
		t.Helper()
		s, err := store.Open(context.Background(), store.Options{
			URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?%s", pg.Port, query), MaxOpenConns: 2})
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := open("sslmode=verify-full&sslrootcert=" + pki.CAFile); err != nil {
		t.Fatalf("verify-full with the server's CA: %v", err)
	}
	other := tlstest.NewPKI(t, t.TempDir())
	if err := open("sslmode=verify-full&sslrootcert=" + other.CAFile); err == nil {
		t.Error("verify-full with a CA that did not sign the server connected")
	}
	if err := open("sslmode=disable"); err == nil {
		t.Error("a plaintext connection was let in by a server that takes TLS only")
	}
}

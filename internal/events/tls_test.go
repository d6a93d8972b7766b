package events

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/multijuego/multijuego/internal/certs"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/tlstest"
)

// A NATS server that takes only mutual TLS: the bus connects over tls://
// with the CA and a client certificate, and is refused without the
// certificate or when it does not trust the server.
func TestExternalNATSOverMutualTLS(t *testing.T) {
	pki := tlstest.NewPKI(t, t.TempDir())
	serverTLS, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, CaFile: pki.CAFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := eventstest.StartServer(t, func(o *server.Options) {
		o.TLSConfig, o.TLS, o.TLSVerify = serverTLS, true, true
	})
	url := "tls://127.0.0.1:" + itoa(srv.Port)
	open := func(c certs.Client) (*Bus, error) {
		t.Helper()
		cfg, err := c.Config("")
		if err != nil {
			t.Fatal(err)
		}
		return Open(context.Background(), Config{URL: url, TLS: cfg}, testLog(t))
	}
	b, err := open(certs.Client{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey})
	if err != nil {
		t.Fatalf("with the CA and a client certificate: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := open(certs.Client{CAFile: pki.CAFile}); err == nil {
		b.Close()
		t.Error("without a client certificate: the server let the bus in")
	}
	other := tlstest.NewPKI(t, t.TempDir())
	if b, err := open(certs.Client{CAFile: other.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}); err == nil {
		b.Close()
		t.Error("with a CA that did not sign the server: the bus trusted it")
	}
	// A nats:// URL and no TLS settings: the server asks for TLS, the
	// client checks it against the system's roots, which do not know the
	// test CA. Nothing falls back to plaintext.
	if b, err := Open(context.Background(), Config{URL: "nats://127.0.0.1:" + itoa(srv.Port)}, testLog(t)); err == nil {
		b.Close()
		t.Error("nats:// without TLS settings connected to a server with a private CA")
	}
}

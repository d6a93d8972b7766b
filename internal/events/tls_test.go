package events

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

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

// The embedded listener with TLS and required client certificates: a
// nats.go client with the role's password and a certificate from the
// listener's client CA gets in; plaintext, no certificate, an expired
// certificate, one from another CA, or a client that does not trust the
// listener's CA are refused. The in-process connection needs none.
func TestEmbeddedListenerMutualTLS(t *testing.T) {
	pki := tlstest.NewPKI(t, t.TempDir())
	listenTLS, err := certs.Server{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile}.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	b := openEmbedded(t, Config{Listen: "127.0.0.1:" + port, ListenTLS: listenTLS})
	if err := b.Ready(context.Background()); err != nil {
		t.Fatalf("in-process connection: %v", err)
	}
	a, ok, err := EmbeddedAuth(context.Background(), b.cfg.DataDir, RoleOperator, nil)
	if err != nil || !ok {
		t.Fatalf("operator credentials: %v %v", ok, err)
	}
	connect := func(scheme string, c certs.Client) error {
		t.Helper()
		opts := []nats.Option{nats.UserInfo(a.User, a.Password), nats.MaxReconnects(0)}
		if c.Set() {
			cfg, err := c.Config("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, nats.Secure(cfg))
		}
		nc, err := nats.Connect(scheme+"://127.0.0.1:"+port, opts...)
		if err != nil {
			return err
		}
		defer nc.Close()
		return nc.Flush()
	}
	if err := connect("tls", certs.Client{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}); err != nil {
		t.Fatalf("the right CA and a client certificate: %v", err)
	}
	other := tlstest.NewPKI(t, t.TempDir())
	expiredCert, expiredKey := pki.Expired(t, "expired")
	for name, c := range map[string]struct {
		scheme string
		client certs.Client
	}{
		"plaintext":                          {"nats", certs.Client{}},
		"no client certificate":              {"tls", certs.Client{CAFile: pki.CAFile}},
		"a client certificate of another CA": {"tls", certs.Client{CAFile: pki.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey}},
		"an expired client certificate":      {"tls", certs.Client{CAFile: pki.CAFile, CertFile: expiredCert, KeyFile: expiredKey}},
		"a client that trusts another CA":    {"tls", certs.Client{CAFile: other.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}},
	} {
		if err := connect(c.scheme, c.client); err == nil {
			t.Errorf("%s: connected", name)
		}
	}
}

// With client_names, a certificate of the same CA for another name (a
// role this listener is not for) is refused at the handshake too.
func TestEmbeddedListenerClientNames(t *testing.T) {
	pki := tlstest.NewPKI(t, t.TempDir())
	listenTLS, err := certs.Server{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile, ClientNames: []string{"client", "persist-*"}}.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	b := openEmbedded(t, Config{Listen: "127.0.0.1:" + port, ListenTLS: listenTLS})
	a, ok, err := EmbeddedAuth(context.Background(), b.cfg.DataDir, RoleOperator, nil)
	if err != nil || !ok {
		t.Fatalf("operator credentials: %v %v", ok, err)
	}
	persistCert, persistKey := pki.Issue(t, "persist-1")
	gwCert, gwKey := pki.Issue(t, "gw-0")
	for _, c := range []struct {
		cert, key string
		want      bool
	}{{pki.ClientCert, pki.ClientKey, true}, {persistCert, persistKey, true}, {gwCert, gwKey, false}} {
		cfg, err := certs.Client{CAFile: pki.CAFile, CertFile: c.cert, KeyFile: c.key}.Config("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect("tls://127.0.0.1:"+port, nats.UserInfo(a.User, a.Password), nats.Secure(cfg), nats.MaxReconnects(0))
		if err == nil {
			err = nc.Flush()
			nc.Close()
		}
		if (err == nil) != c.want {
			t.Errorf("%s: connect error %v, want connected %v", filepath.Base(c.cert), err, c.want)
		}
	}
}

// With TLS the listener may open beyond loopback (it always has
// credentials: the embedded users); without, it may not.
func TestEmbeddedListenBeyondLoopbackNeedsTLS(t *testing.T) {
	pki := tlstest.NewPKI(t, t.TempDir())
	listenTLS, err := certs.Server{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkListen(Config{Listen: "0.0.0.0:4222", ListenTLS: listenTLS}); err != nil {
		t.Errorf("0.0.0.0 with TLS: %v", err)
	}
	if _, err := checkListen(Config{Listen: "0.0.0.0:4222"}); err == nil || !strings.Contains(err.Error(), "events.listen_tls") {
		t.Errorf("0.0.0.0 without TLS: %v, want a refusal naming events.listen_tls", err)
	}
}

package cache_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/certs"
	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/internal/tlstest"
)

// A redis-server that takes only mutual TLS on its TLS port: the cache
// works over rediss:// with the CA and a client certificate, and is
// refused without the certificate or when it does not trust the server.
func TestRedisOverMutualTLS(t *testing.T) {
	pki := tlstest.NewPKI(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	redistest.Start(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", pki.ServerCert, "--tls-key-file", pki.ServerKey,
		"--tls-ca-cert-file", pki.CAFile, "--tls-auth-clients", "yes")
	url := fmt.Sprintf("rediss://127.0.0.1:%d/0", tlsPort)

	try := func(c certs.Client) error {
		t.Helper()
		cfg, err := c.Config("")
		if err != nil {
			t.Fatal(err)
		}
		client, err := cache.ParseRedisURL(url, cfg)
		if err != nil {
			return err
		}
		defer client.Close()
		r, err := cache.NewRedis(cache.RedisOptions{Client: client, Prefix: redistest.Prefix(t), Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := r.Set(ctx, "k", []byte("over tls"), time.Minute); err != nil {
			return err
		}
		v, ok, err := r.Get(ctx, "k")
		if err == nil && (!ok || string(v) != "over tls") {
			t.Errorf("Get = %q, %v", v, ok)
		}
		return err
	}
	if err := try(certs.Client{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}); err != nil {
		t.Fatalf("with the CA and a client certificate: %v", err)
	}
	if err := try(certs.Client{CAFile: pki.CAFile}); err == nil {
		t.Error("without a client certificate: the server let the cache in")
	}
	other := tlstest.NewPKI(t, t.TempDir())
	if err := try(certs.Client{CAFile: other.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}); err == nil {
		t.Error("with a CA that did not sign the server: the cache trusted it")
	}
	if _, err := cache.ParseRedisURL(fmt.Sprintf("redis://127.0.0.1:%d/0", tlsPort), &tls.Config{}); err == nil {
		t.Error("TLS settings with a redis:// URL were accepted")
	}
}

package certs_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/certs"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// The development certificate is made once, kept, verifies for the
// loopback names, and is made again a week before it expires.
func TestSelfSignedLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	certFile, keyFile, err := certs.SelfSigned(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(certFile)
	if runtime.GOOS != "windows" {
		if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
			t.Errorf("key mode %v, want 0600", st.Mode().Perm())
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pair.Leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: t0.Add(time.Hour)}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots, CurrentTime: t0}); err == nil {
		t.Error("the development certificate verifies for example.com")
	}
	if _, _, err := certs.SelfSigned(dir, t0.Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(certFile); !bytes.Equal(again, first) {
		t.Error("a valid certificate was made again")
	}
	if _, _, err := certs.SelfSigned(dir, t0.Add(85*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if renewed, _ := os.ReadFile(certFile); bytes.Equal(renewed, first) {
		t.Error("a certificate 5 days from expiry was kept")
	}
}

// A Source loads a changed pair once the check interval has passed (on
// its clock), keeps the old certificate when the new pair does not load,
// and reports why.
func TestSourceReloadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	write := func(at time.Time) {
		t.Helper()
		c, k, err := certs.DevCert(at, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for f, b := range map[string][]byte{certFile: c, keyFile: k} {
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(t0)
	now := t0
	var errs []error
	src, err := certs.NewSource(certFile, keyFile, certs.Options{CheckEvery: time.Second, Now: func() time.Time { return now },
		OnError: func(err error) { errs = append(errs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		c, err := src.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	first := serial()
	write(t0.Add(time.Minute))
	if got := serial(); got != first {
		t.Fatal("reloaded before the check interval passed")
	}
	now = now.Add(2 * time.Second)
	second := serial()
	if second == first {
		t.Fatal("a changed pair was not loaded after the check interval")
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(keyFile, t0.Add(2*time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if got := serial(); got != second {
		t.Error("a broken pair replaced the certificate in use")
	}
	if len(errs) != 1 {
		t.Errorf("errors reported: %v, want the broken pair once", errs)
	}
	if err := src.Reload(); err == nil {
		t.Error("Reload of a broken pair succeeded")
	}
	if _, err := certs.NewSource(filepath.Join(dir, "missing.pem"), keyFile, certs.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
}

// A listener's client names match the certificate's common name or a DNS
// name, exactly or by a prefix ending in *; nothing else.
func TestMatchName(t *testing.T) {
	ca, caKey, err := certs.NewCA("test CA", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := certs.Issue(ca, caKey, "gw-0", []string{"gw-0.internal", "127.0.0.1"}, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		names []string
		want  bool
	}{
		{[]string{"gw-0"}, true},
		{[]string{"gw-0.internal"}, true},
		{[]string{"gw-*"}, true},
		{[]string{"game-*", "gw-0"}, true},
		{[]string{"*"}, true},
		{[]string{"gw"}, false},
		{[]string{"gw-1", "game-*"}, false},
		{[]string{"127.0.0.1"}, false}, // addresses are not names
		{nil, false},
	} {
		if got := certs.MatchName(pair.Leaf, c.names); got != c.want {
			t.Errorf("MatchName(gw-0, %q) = %v, want %v", c.names, got, c.want)
		}
	}
	if err := certs.RequireClientCerts(&tls.Config{}, "", []string{"gw-*"}); err == nil {
		t.Error("client names without a client CA file: accepted")
	}
}

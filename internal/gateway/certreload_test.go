package gateway_test

import (
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/tlstest"
)

// A certificate renewed on disk is served to new handshakes within a
// second or two, while a socket opened before keeps working; every answer
// over TLS carries HSTS.
func TestCertificateRenewedWithoutDroppingSockets(t *testing.T) {
	e := newTLSEnv(t)
	a := e.connectTLS("alice")
	before := e.servedSerial(t)

	next, err := tlstest.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.keyFile, next.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.certFile, next.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	e.roots.AddCert(next.TLS.Leaf)
	deadline := time.Now().Add(5 * time.Second)
	for e.servedSerial(t) == before {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate is not served 5 s after it was written")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := e.servedSerial(t); got != next.TLS.Leaf.SerialNumber.String() {
		t.Errorf("served serial %s, want the renewed certificate's %s", got, next.TLS.Leaf.SerialNumber)
	}
	a.sendJSON("echo", "after-renewal", map[string]any{"n": 1})
	if got := a.expect("echo"); got.CID != "after-renewal" {
		t.Errorf("socket opened before the renewal: %+v", got)
	}
}

// A renewal that does not load (a key that does not match) leaves the
// served certificate as it was, and says so in the log.
func TestCertificateRenewalThatFailsKeepsTheOld(t *testing.T) {
	e := newTLSEnv(t)
	before := e.servedSerial(t)
	other, err := tlstest.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.certFile, other.CertPEM, 0o600); err != nil { // the key stays the old one
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), "TLS certificate not reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the failed reload; logs:\n%s", e.logs.String())
		}
		_ = e.servedSerial(t)
		time.Sleep(200 * time.Millisecond)
	}
	if got := e.servedSerial(t); got != before {
		t.Errorf("served serial %s after a broken renewal, want the old %s", got, before)
	}
}

// servedSerial makes a handshake and returns the serial of the
// certificate the server presented; it also checks HSTS on /healthz.
func (e *tlsEnv) servedSerial(t *testing.T) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + e.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q over TLS, want max-age=31536000", got)
	}
	return res.TLS.PeerCertificates[0].SerialNumber.String()
}

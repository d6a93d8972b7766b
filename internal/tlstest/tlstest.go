// Package tlstest makes self-signed certificates for 127.0.0.1, for tests
// and measurement tools that serve TLS on loopback.
package tlstest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/certs"
)

// Cert is a self-signed server certificate for 127.0.0.1 (certs.DevCert,
// valid an hour either side of now), in the forms a server and its clients
// need.
type Cert struct {
	TLS     tls.Certificate // for a tls.Config of the server
	Roots   *x509.CertPool  // trusts it, for a tls.Config of a client
	CertPEM []byte
	KeyPEM  []byte
}

// New makes a certificate.
func New() (Cert, error) {
	certPEM, keyPEM, err := certs.DevCert(time.Now(), time.Hour)
	if err != nil {
		return Cert{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return Cert{}, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(pair.Leaf)
	return Cert{TLS: pair, Roots: roots, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// Files makes a certificate and writes it to dir as cert.pem and key.pem
// (0600); it returns the two paths and a pool that trusts the certificate.
func Files(tb testing.TB, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	tb.Helper()
	c, err := New()
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile, c.Roots
}

// PKI is a small CA and two certificates it signed for 127.0.0.1 (a server
// and a client, each usable as both), as files in one directory, for tests
// of TLS and mutual TLS to real servers.
type PKI struct {
	CAFile, CAKeyFile     string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// NewPKI writes a PKI to dir.
func NewPKI(tb testing.TB, dir string) PKI {
	tb.Helper()
	now := time.Now()
	caCert, caKey, err := certs.NewCA("test CA", now, 24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	p := PKI{CAFile: write("ca.pem", caCert), CAKeyFile: write("ca-key.pem", caKey)}
	for _, who := range []string{"server", "client"} {
		c, k, err := certs.Issue(caCert, caKey, who, []string{"127.0.0.1", "localhost"}, now, 24*time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		if who == "server" {
			p.ServerCert, p.ServerKey = write("server.pem", c), write("server-key.pem", k)
		} else {
			p.ClientCert, p.ClientKey = write("client.pem", c), write("client-key.pem", k)
		}
	}
	return p
}

// Expired writes a client certificate for 127.0.0.1 signed by p's CA
// that expired an hour ago (name.pem, name-key.pem, next to the CA) and
// returns its two paths: a peer a mutual TLS listener must refuse.
func (p PKI) Expired(tb testing.TB, name string) (certFile, keyFile string) {
	tb.Helper()
	// Issue starts validity an hour before its now: valid from -3h to -1h.
	return p.issue(tb, name, time.Now().Add(-2*time.Hour), time.Hour)
}

// Issue writes a certificate for name (its common name; for 127.0.0.1
// and localhost) signed by p's CA, valid for a day, next to the CA, and
// returns its two paths: another role's certificate from the same CA.
func (p PKI) Issue(tb testing.TB, name string) (certFile, keyFile string) {
	tb.Helper()
	return p.issue(tb, name, time.Now(), 24*time.Hour)
}

func (p PKI) issue(tb testing.TB, name string, now time.Time, validity time.Duration) (certFile, keyFile string) {
	tb.Helper()
	caCert, err := os.ReadFile(p.CAFile)
	if err != nil {
		tb.Fatal(err)
	}
	caKey, err := os.ReadFile(p.CAKeyFile)
	if err != nil {
		tb.Fatal(err)
	}
	c, k, err := certs.Issue(caCert, caKey, name, []string{"127.0.0.1", "localhost"}, now, validity)
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Dir(p.CAFile)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	for f, b := range map[string][]byte{certFile: c, keyFile: k} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return certFile, keyFile
}

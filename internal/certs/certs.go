// Package certs provides the public listener's certificate: a pair of PEM
// files re-read when they change (a renewal by cert-manager or certbot,
// or SIGHUP), so new handshakes get the new certificate while open
// connections keep theirs; and a self-signed development certificate kept
// in the data dir.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Source hands out the certificate in certFile/keyFile to TLS handshakes
// (GetCertificate). It looks at the files' modification times at most once
// per CheckEvery, on a handshake, and loads them again when they changed; a
// pair that does not load (a renewal half written) leaves the previous
// certificate in use and is reported to OnError.
type Source struct {
	certFile, keyFile string
	checkEvery        time.Duration
	now               func() time.Time
	onError           func(error)

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

// Options tune a Source. Zero values: check every second, time.Now, errors
// dropped.
type Options struct {
	CheckEvery time.Duration
	Now        func() time.Time
	OnError    func(error)
}

// NewSource loads the pair once; an error here is the caller's to report.
func NewSource(certFile, keyFile string, o Options) (*Source, error) {
	if o.CheckEvery <= 0 {
		o.CheckEvery = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnError == nil {
		o.OnError = func(error) {}
	}
	s := &Source{certFile: certFile, keyFile: keyFile, checkEvery: o.CheckEvery, now: o.Now, onError: o.OnError}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload loads the pair now (SIGHUP).
func (s *Source) Reload() error {
	stamp, err := s.stat()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	s.mu.Lock()
	s.cert, s.stamp, s.checked = &cert, stamp, s.now()
	s.mu.Unlock()
	return nil
}

func (s *Source) stat() ([2]time.Time, error) {
	var st [2]time.Time
	for i, f := range []string{s.certFile, s.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, fmt.Errorf("certs: %w", err)
		}
		st[i] = fi.ModTime()
	}
	return st, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := s.now()
	s.mu.Lock()
	cert, due := s.cert, now.Sub(s.checked) >= s.checkEvery
	if due {
		s.checked = now // one handshake looks; the others go on with cert
	}
	s.mu.Unlock()
	if !due {
		return cert, nil
	}
	stamp, err := s.stat()
	s.mu.Lock()
	same := err == nil && stamp == s.stamp
	s.mu.Unlock()
	if err != nil {
		s.onError(err)
		return cert, nil
	}
	if same {
		return cert, nil
	}
	if err := s.Reload(); err != nil {
		s.onError(err)
		return cert, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, nil
}

// Leaf is the certificate in use (for logs and tests).
func (s *Source) Leaf() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert.Leaf
}

// Self-signed development certificates: ECDSA P-256, for localhost,
// 127.0.0.1 and ::1, valid devValidity, made again when less than
// devRenewBefore is left.
const (
	devValidity    = 90 * 24 * time.Hour
	devRenewBefore = 7 * 24 * time.Hour
)

// SelfSigned returns the development certificate pair kept in dir
// (dev-cert.pem, dev-key.pem 0600), making it when it is missing, does not
// load, or expires within a week.
func SelfSigned(dir string, now time.Time) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "dev-cert.pem"), filepath.Join(dir, "dev-key.pem")
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && now.Add(devRenewBefore).Before(c.Leaf.NotAfter) {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certPEM, keyPEM, err := DevCert(now, devValidity)
	if err != nil {
		return "", "", err
	}
	if err := writeAtomic(keyFile, keyPEM); err != nil {
		return "", "", err
	}
	if err := writeAtomic(certFile, certPEM); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// DevCert makes a self-signed certificate for localhost, 127.0.0.1 and ::1
// (ECDSA P-256, valid from an hour before now for validity), in PEM. It is
// its own root: a client trusts it by adding it to its roots.
func DevCert(now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	tmpl, err := template("localhost", now, validity)
	if err != nil {
		return nil, nil, err
	}
	tmpl.Subject.Organization = []string{"multijuego development"}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.DNSNames = []string{"localhost"}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true // so a client can trust it as its own root
	return sign(tmpl, nil, nil)
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}

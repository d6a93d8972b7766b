package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
)

// Client is what an outgoing connection (PostgreSQL, Redis, NATS) needs to
// check the server and, for mutual TLS, to present itself.
type Client struct {
	CAFile   string `yaml:"ca_file" help:"PEM file of the CA(s) that sign the server's certificate (empty: the system's roots)"`
	CertFile string `yaml:"cert_file" help:"PEM client certificate for mutual TLS, with key_file"`
	KeyFile  string `yaml:"key_file" help:"PEM private key of cert_file"`
}

// Set reports whether any file is configured.
func (c Client) Set() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// Config builds a tls.Config for a server named serverName (TLS 1.2
// minimum), or nil when nothing is configured.
func (c Client) Config(serverName string) (*tls.Config, error) {
	if !c.Set() {
		return nil, nil
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("certs: a client certificate needs both its certificate and its key file")
	}
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := Pool(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certs: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Pool reads the PEM certificates of file (one or more CAs) into a pool.
func Pool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Loopback reports whether host (a name or an address, with or without a
// port) is this machine: localhost or a loopback address. A connection
// that never leaves the machine may go without TLS.
func Loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// RequireTLS is the security.require_tls rule for one outgoing connection:
// what names it ("PostgreSQL at db:5432"), encrypted says whether it will
// use TLS. A plaintext connection to another machine is refused when
// require is set; on loopback it is allowed.
func RequireTLS(require bool, what, host string, encrypted bool) error {
	if !require || encrypted || Loopback(host) {
		return nil
	}
	return fmt.Errorf("%s is not over TLS and security.require_tls is on: use a TLS URL (see docs/security.md, \"TLS to PostgreSQL, Redis and NATS\") or turn security.require_tls off", what)
}

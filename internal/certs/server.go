package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
)

// Server is what a listener that other roles call needs: its certificate
// and, for mutual TLS, the CA(s) whose client certificates it accepts.
type Server struct {
	CertFile     string   `yaml:"cert_file" help:"PEM server certificate (chain); with key_file, the listener takes TLS only (TLS 1.2 minimum); re-read when the files change"`
	KeyFile      string   `yaml:"key_file" help:"PEM private key of cert_file"`
	ClientCAFile string   `yaml:"client_ca_file" help:"PEM CA(s): when set, a client must present a certificate signed by one of them (mutual TLS); others are refused at the handshake"`
	ClientNames  []string `yaml:"client_names" help:"with client_ca_file: the only client certificate names accepted (common name or DNS name; a trailing * matches any suffix, e.g. game-*); empty: any certificate of the CA"`
}

// Set reports whether any file is configured.
func (s Server) Set() bool {
	return s.CertFile != "" || s.KeyFile != "" || s.ClientCAFile != "" || len(s.ClientNames) > 0
}

// Config builds the listener's tls.Config (TLS 1.2 minimum): the
// certificate from a Source (re-read when its files change; a pair that
// does not load is reported to onError and the previous one stays), and
// with ClientCAFile, a client certificate required and verified against
// it. Nil when nothing is configured.
func (s Server) Config(onError func(error)) (*tls.Config, error) {
	if !s.Set() {
		return nil, nil
	}
	if s.CertFile == "" || s.KeyFile == "" {
		return nil, errors.New("certs: a TLS listener needs both its certificate and its key file")
	}
	src, err := NewSource(s.CertFile, s.KeyFile, Options{OnError: onError})
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{GetCertificate: src.GetCertificate, MinVersion: tls.VersionTLS12}
	if err := RequireClientCerts(cfg, s.ClientCAFile, s.ClientNames); err != nil {
		return nil, err
	}
	return cfg, nil
}

// RequireClientCerts makes cfg, a listener's, require a client
// certificate signed by a CA of caFile and refuse any other peer at the
// handshake (wrong CA, expired, none). With names, the certificate must
// also carry one of them (MatchName): a CA that signs every role's
// certificate then no longer lets any role call this listener. An empty
// caFile changes nothing (names without it are an error).
func RequireClientCerts(cfg *tls.Config, caFile string, names []string) error {
	if caFile == "" {
		if len(names) > 0 {
			return errors.New("certs: client names are checked on client certificates: set the client CA file too")
		}
		return nil
	}
	pool, err := Pool(caFile)
	if err != nil {
		return err
	}
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	if len(names) > 0 {
		names = slices.Clone(names)
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !MatchName(cs.PeerCertificates[0], names) {
				return errPeerName
			}
			return nil
		}
	}
	return nil
}

var errPeerName = errors.New("certs: the client certificate is not one of the names this listener accepts")

// MatchName reports whether c's common name or one of its DNS names is in
// names, where a name ending in * matches any name with that prefix.
func MatchName(c *x509.Certificate, names []string) bool {
	for _, have := range append([]string{c.Subject.CommonName}, c.DNSNames...) {
		for _, want := range names {
			prefix, wild := strings.CutSuffix(want, "*")
			if have == want || wild && have != "" && strings.HasPrefix(have, prefix) {
				return true
			}
		}
	}
	return false
}

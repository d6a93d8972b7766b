package certs

import (
	"crypto/tls"
	"errors"
)

// Server is what a listener that other roles call needs: its certificate
// and, for mutual TLS, the CA(s) whose client certificates it accepts.
type Server struct {
	CertFile     string `yaml:"cert_file" help:"PEM server certificate (chain); with key_file, the listener takes TLS only (TLS 1.2 minimum); re-read when the files change"`
	KeyFile      string `yaml:"key_file" help:"PEM private key of cert_file"`
	ClientCAFile string `yaml:"client_ca_file" help:"PEM CA(s): when set, a client must present a certificate signed by one of them (mutual TLS); others are refused at the handshake"`
}

// Set reports whether any file is configured.
func (s Server) Set() bool { return s.CertFile != "" || s.KeyFile != "" || s.ClientCAFile != "" }

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
	if err := RequireClientCerts(cfg, s.ClientCAFile); err != nil {
		return nil, err
	}
	return cfg, nil
}

// RequireClientCerts makes cfg, a listener's, require a client
// certificate signed by a CA of caFile and refuse any other peer at the
// handshake (wrong CA, expired, none). An empty caFile changes nothing.
func RequireClientCerts(cfg *tls.Config, caFile string) error {
	if caFile == "" {
		return nil
	}
	pool, err := Pool(caFile)
	if err != nil {
		return err
	}
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return nil
}

package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/seal/awskms"
	"github.com/multijuego/multijuego/internal/seal/hsm"
)

// SealConfig chooses the key provider that seals secrets at rest (the
// signing keys, the device-id secret, the event bus's secrets) and wraps
// the per-account data keys of personal data.
type SealConfig struct {
	Provider    string       `yaml:"provider" help:"key provider sealing secrets at rest: local (a keyring file), pkcs11 (an HSM; needs a build with cgo) or awskms (AWS KMS)"`
	KeyringFile string       `yaml:"keyring_file" help:"local provider: the keyring file of key-encryption keys (mode 0600; default: keyring.kek in the keys dir, so nodes sharing that share it); keep it elsewhere for the keys dir alone to be useless to a thief"`
	PKCS11      PKCS11Config `yaml:"pkcs11"`
	AWSKMS      AWSKMSConfig `yaml:"awskms"`
	// PersonalData and VaultURL: internal/app/personal.go.
	PersonalData bool   `yaml:"personal_data" help:"seal personal data (emails, client addresses in the audit log, personal match events) under per-account data keys before it is stored or queued; off stores it in clear (lookups by email use a keyed hash either way)"`
	VaultURL     string `yaml:"vault_url" secret:"true" help:"database of the per-account data keys (sqlite://PATH or postgres://...); default: vault.db in the keys dir on SQLite, the accounts database on PostgreSQL (then its backups hold the keys: give it a database of its own). A game node or gateway run without the auth role uses it only when set (with the auth nodes' seal.provider settings): then it seals and opens personal match events"`
}

// PKCS11Config is the pkcs11 provider's: the token and how to log in. The
// PIN is never a setting itself, only where to read it.
type PKCS11Config struct {
	Module   string `yaml:"module" help:"pkcs11 provider: path of the HSM's PKCS#11 library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"`
	Token    string `yaml:"token" help:"pkcs11 provider: label of the token holding the key-encryption keys"`
	PINFile  string `yaml:"pin_file" help:"pkcs11 provider: file whose first line is the token's user PIN (or seal.pkcs11.pin_env)"`
	PINEnv   string `yaml:"pin_env" help:"pkcs11 provider: name of the environment variable holding the token's user PIN (or seal.pkcs11.pin_file)"`
	KeyLabel string `yaml:"key_label" help:"pkcs11 provider: label of the key-encryption key objects in the token; their id is their version"`
}

// AWSKMSConfig is the awskms provider's. Credentials come from the AWS
// SDK's default chain (environment, shared files, the instance's role).
type AWSKMSConfig struct {
	KeyID    string `yaml:"key_id" help:"awskms provider: the KMS key (key id, key ARN, alias/NAME or alias ARN; an alias lets the key change)"`
	Region   string `yaml:"region" help:"awskms provider: AWS region (empty: the environment's)"`
	Endpoint string `yaml:"endpoint" help:"awskms provider: endpoint URL override, e.g. a VPC endpoint (empty: the region's)"`
}

var providers = []string{"local", "pkcs11", "awskms"}

// Validate checks the seal settings.
func (s SealConfig) Validate(v *config.Validator, prefix string) {
	v.Check(slices.Contains(providers, s.Provider), prefix+".provider", "must be local, pkcs11 or awskms, got %q", s.Provider)
	switch s.Provider {
	case "pkcs11":
		p := s.PKCS11
		v.Check(p.Module != "", prefix+".pkcs11.module", "must name the HSM's PKCS#11 library for seal.provider=pkcs11")
		v.Check(p.Token != "", prefix+".pkcs11.token", "must name the token for seal.provider=pkcs11")
		v.Check((p.PINFile == "") != (p.PINEnv == ""), prefix+".pkcs11.pin_file", "set one of seal.pkcs11.pin_file and seal.pkcs11.pin_env for seal.provider=pkcs11")
	case "awskms":
		a := s.AWSKMS
		v.Check(a.KeyID != "", prefix+".awskms.key_id", "must name the KMS key for seal.provider=awskms")
		if a.Endpoint != "" {
			u, err := url.Parse(a.Endpoint)
			v.Check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", prefix+".awskms.endpoint", "must be an http(s) URL, got %q", a.Endpoint)
		}
	}
}

// KeyringFile is where the local provider's key-encryption keys live.
func (c Config) KeyringFile() string {
	if c.Seal.KeyringFile != "" {
		return c.Seal.KeyringFile
	}
	return filepath.Join(c.KeysDir(), "keyring.kek")
}

// keyProvider is an open key provider; Close releases what it holds (the
// HSM's sessions).
type keyProvider interface {
	seal.Provider
	Close() error
}

// nothingToClose is a provider that holds nothing to release.
type nothingToClose struct{ seal.Provider }

func (nothingToClose) Close() error { return nil }

// openTimeout bounds opening a provider (an HSM login, a KMS round trip).
const openTimeout = 15 * time.Second

// openSeal opens the configured key provider. log (nil: none) gets the
// pkcs11 provider's reopens of its sessions.
func openSeal(ctx context.Context, c Config, log *slog.Logger) (keyProvider, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	switch c.Seal.Provider {
	case "local":
		l, err := seal.OpenLocal(c.KeyringFile())
		if err != nil {
			return nil, fmt.Errorf("seal: open the keyring %s: %w", c.KeyringFile(), err)
		}
		return nothingToClose{l}, nil
	case "pkcs11":
		p := c.Seal.PKCS11
		pin, err := p.pin()
		if err != nil {
			return nil, err
		}
		h, err := hsm.Open(ctx, hsm.Options{Module: p.Module, Token: p.Token, PIN: pin, KeyLabel: p.KeyLabel, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("seal.provider=pkcs11: %w", err)
		}
		return h, nil
	case "awskms":
		a := c.Seal.AWSKMS
		k, err := awskms.Open(ctx, awskms.Options{KeyID: a.KeyID, Region: a.Region, Endpoint: a.Endpoint})
		if err != nil {
			return nil, fmt.Errorf("seal.provider=awskms: %w", err)
		}
		return nothingToClose{k}, nil
	}
	return nil, fmt.Errorf("seal.provider %q is not one of %v", c.Seal.Provider, providers)
}

// registerSealMetrics exports what the provider counts: the pkcs11
// provider's reopens of its sessions on the token.
func registerSealMetrics(reg *prometheus.Registry, p keyProvider) {
	if h, ok := p.(*hsm.Provider); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_seal_pkcs11_reopens_total",
			Help: "Times the pkcs11 key provider reopened its sessions on the token (or logged in again) after the HSM dropped them."},
			func() float64 { return float64(h.Reopens()) }))
	}
}

// pin reads the token's PIN from the file or the environment variable.
func (p PKCS11Config) pin() (string, error) {
	if p.PINEnv != "" {
		pin, ok := os.LookupEnv(p.PINEnv)
		if !ok || pin == "" {
			return "", fmt.Errorf("seal.pkcs11.pin_env: the environment variable %s is not set", p.PINEnv)
		}
		return pin, nil
	}
	b, err := os.ReadFile(p.PINFile)
	if err != nil {
		return "", fmt.Errorf("seal.pkcs11.pin_file: %w", err)
	}
	pin, _, _ := strings.Cut(string(b), "\n")
	if pin = strings.TrimSpace(pin); pin == "" {
		return "", fmt.Errorf("seal.pkcs11.pin_file: %s is empty", p.PINFile)
	}
	return pin, nil
}

// keysDir is the signing keys' directory, made if missing (the local
// provider's default keyring lives there; with the others, the device-id
// secret is its first file), with the provider that seals them, open
// until the caller closes it. log is openSeal's.
func (c Config) keysDir(ctx context.Context, log *slog.Logger) (auth.KeysDir, keyProvider, error) {
	if err := os.MkdirAll(c.KeysDir(), 0o700); err != nil {
		return auth.KeysDir{}, nil, fmt.Errorf("keys: %w", err)
	}
	p, err := openSeal(ctx, c, log)
	if err != nil {
		return auth.KeysDir{}, nil, err
	}
	return auth.KeysDir{Path: c.KeysDir(), Seal: p}, p, nil
}

// rotateKEK makes a new key-encryption key in the provider and seals the
// keys dir under it. It returns what it did, for the audit log.
func rotateKEK(ctx context.Context, c Config, p keyProvider, dir auth.KeysDir) (map[string]any, string, error) {
	var version, where string
	switch c.Seal.Provider {
	case "local":
		v, err := seal.Rotate(c.KeyringFile(), time.Now())
		if err != nil {
			return nil, "", err
		}
		version, where = fmt.Sprint(v), c.KeyringFile()
	case "pkcs11":
		r, ok := p.(interface {
			Rotate(context.Context) (string, error)
		})
		if !ok {
			return nil, "", fmt.Errorf("seal.provider=pkcs11: %T cannot rotate", p)
		}
		v, err := r.Rotate(ctx)
		if err != nil {
			return nil, "", err
		}
		version, where = v, "token "+c.Seal.PKCS11.Token
	case "awskms":
		return nil, "", errors.New("seal.provider=awskms: key-encryption keys rotate in KMS, not here: enable automatic key rotation on the key " +
			"(old ciphertexts keep decrypting, nothing to re-wrap), or point the alias seal.awskms.key_id names at a new key and run 'multijuego keys rewrap'")
	}
	n, err := dir.Rewrap()
	if err != nil {
		return nil, "", fmt.Errorf("new key-encryption key %s in %s, but sealing the keys again failed (run 'multijuego keys rewrap'): %w", version, where, err)
	}
	msg := fmt.Sprintf("new key-encryption key %s in %s; %d key files in %s sealed under it; keys sealed under older versions stay readable", version, where, n, dir.Path)
	return map[string]any{"provider": c.Seal.Provider, "kek_version": version, "resealed": n}, msg, nil
}

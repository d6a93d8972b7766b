package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/logtest"
)

// security.require_tls refuses plaintext to another machine, names the
// setting, allows loopback and TLS URLs; with it off, plaintext to another
// machine is allowed and warned about. Nothing here connects anywhere.
func TestRequireTLS(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    func(*Config)
		refuse string // "" when allowed
	}{
		{"postgres without sslmode", func(c *Config) { c.DatabaseURL = "postgres://u@db.internal:5432/g" }, "PostgreSQL at db.internal:5432"},
		{"postgres sslmode=prefer", func(c *Config) { c.DatabaseURL = "postgres://u@db.internal:5432/g?sslmode=prefer" }, "PostgreSQL"},
		{"postgres verify-full", func(c *Config) {
			c.DatabaseURL = "postgres://u@db.internal:5432/g?sslmode=verify-full&sslrootcert=/ca.pem"
		}, ""},
		{"postgres on loopback", func(c *Config) { c.DatabaseURL = "postgres://u@127.0.0.1:5432/g" }, ""},
		{"redis", func(c *Config) { c.RedisURL = "redis://cache.internal:6379/0" }, "Redis at cache.internal:6379"},
		{"redis cluster, one seed plain", func(c *Config) { c.RedisURL = "redis-cluster://127.0.0.1:7000,cache.internal:7001" }, "Redis at cache.internal:7001"},
		{"rediss", func(c *Config) { c.RedisURL = "rediss://cache.internal:6380/0" }, ""},
		{"redis on localhost", func(c *Config) { c.RedisURL = "redis://localhost:6379/0" }, ""},
		{"nats", func(c *Config) { c.NATSURL = "nats://127.0.0.1:4222,nats://nats-2.internal:4222" }, "NATS at nats-2.internal:4222"},
		{"nats tls://", func(c *Config) { c.NATSURL = "tls://nats.internal:4222" }, ""},
		{"nats with a CA", func(c *Config) { c.NATSURL = "nats://nats.internal:4222"; c.Events.TLS.CAFile = "/ca.pem" }, ""},
		{"dynamodb http", func(c *Config) { c.KV, c.DynamoDBEndpoint = "dynamodb", "http://dynamo.internal:8000" }, "DynamoDB"},
		{"auth_url http", func(c *Config) { c.Roles, c.Gateway.AuthURL = []string{"gateway"}, "http://auth.internal:7350" }, "the auth role at auth.internal:7350 (gateway.auth_url)"},
		{"auth_url https", func(c *Config) { c.Roles, c.Gateway.AuthURL = []string{"gateway"}, "https://auth.internal:7350" }, ""},
		{"auth_url on loopback", func(c *Config) { c.Roles, c.Gateway.AuthURL = []string{"gateway"}, "http://127.0.0.1:7350" }, ""},
		{"auth_url unused with the auth role", func(c *Config) { c.Gateway.AuthURL = "http://auth.internal:7350" }, ""},
		{"dynamodb https", func(c *Config) { c.KV, c.DynamoDBEndpoint = "dynamodb", "https://dynamodb.eu-west-1.amazonaws.com" }, ""},
		{"vault without sslmode", func(c *Config) { c.Seal.VaultURL = "postgres://u@vault.internal:5432/keys" }, "PostgreSQL at vault.internal:5432 (seal.vault_url"},
		{"vault verify-full", func(c *Config) {
			c.Seal.VaultURL = "postgres://u@vault.internal:5432/keys?sslmode=verify-full&sslrootcert=/ca.pem"
		}, ""},
		{"vault sqlite", func(c *Config) { c.Seal.VaultURL = "sqlite:///var/lib/multijuego/vault.db" }, ""},
		{"kms endpoint http", func(c *Config) { c.Seal.Provider, c.Seal.AWSKMS.Endpoint = "awskms", "http://kms.internal:4000" }, "AWS KMS at kms.internal:4000 (seal.awskms.endpoint)"},
		{"kms endpoint https", func(c *Config) {
			c.Seal.Provider, c.Seal.AWSKMS.Endpoint = "awskms", "https://kms.eu-west-1.amazonaws.com"
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.set(&c)
			c.Security.RequireTLS = true
			err := CheckOutgoingTLS(c, slog.New(slog.DiscardHandler))
			switch {
			case tc.refuse == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse) || !strings.Contains(err.Error(), "security.require_tls")):
				t.Errorf("err = %v, want a refusal naming %q and security.require_tls", err, tc.refuse)
			}
			c.Security.RequireTLS = false
			logs := &logtest.Buffer{}
			if err := CheckOutgoingTLS(c, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
				t.Errorf("require_tls off: %v", err)
			}
			if warned := strings.Contains(logs.String(), "without TLS"); warned != (tc.refuse != "") {
				t.Errorf("warned = %v, want %v; logs: %s", warned, tc.refuse != "", logs.String())
			}
		})
	}
}

// Main.Open refuses before connecting to anything.
func TestOpenRefusesPlaintextWhenTLSRequired(t *testing.T) {
	c := DefaultConfig()
	c.DataDir, c.Listen = t.TempDir(), "127.0.0.1:0"
	c.DatabaseURL = "postgres://u@db.internal:5432/g"
	c.Security.RequireTLS = true
	m := &Main{Config: c}
	err := m.Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "security.require_tls") {
		t.Fatalf("Open = %v, want the require_tls refusal", err)
	}
}

// `multijuego certs init` then `issue`: a certificate that chains to the
// CA for the names given, as server and client; a second init refuses to
// replace the CA.
func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	now := time.Now()
	var out strings.Builder
	if err := certsCmd([]string{"init", dir}, &out, now); err != nil {
		t.Fatal(err)
	}
	if err := certsCmd([]string{"init", dir}, &out, now); err == nil {
		t.Error("a second init replaced the CA")
	}
	if err := certsCmd([]string{"issue", dir, "auth-0", "auth.internal,10.0.0.7"}, &out, now); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "auth-0.pem"), filepath.Join(dir, "auth-0-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		for _, name := range []string{"auth.internal", "10.0.0.7"} {
			if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s as %v: %v", name, usage, err)
			}
		}
	}
	for _, bad := range [][]string{{"issue", dir, "../x", "a"}, {"issue", dir, "ca", "a"}, {"issue", t.TempDir(), "x", "a"}, {"frobnicate"}, nil} {
		if err := certsCmd(bad, &out, now); err == nil {
			t.Errorf("certs %v succeeded", bad)
		}
	}
}

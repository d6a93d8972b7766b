package app

import (
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/multijuego/multijuego/internal/certs"
)

// SecurityConfig holds the settings that trade convenience for safety.
type SecurityConfig struct {
	RequireTLS bool `yaml:"require_tls" help:"refuse to connect to PostgreSQL, Redis, NATS, DynamoDB or the auth role (gateway.auth_url) on another machine without TLS (loopback is always allowed, so the embedded default and a one-machine install are unaffected); on by default, turn off only on a network you trust"`
}

// outgoing is one connection the process will make: what it is, the host
// it goes to, and whether it will use TLS.
type outgoing struct {
	what, host string
	encrypted  bool
}

// outgoingConnections lists the connections c makes to other services.
func outgoingConnections(c Config) []outgoing {
	var out []outgoing
	out = appendPostgres(out, c.DatabaseURL, "database_url")
	if c.Seal.VaultURL != c.DatabaseURL {
		out = appendPostgres(out, c.Seal.VaultURL, "seal.vault_url")
	}
	if c.Seal.Provider == "awskms" && c.Seal.AWSKMS.Endpoint != "" {
		if u, err := url.Parse(c.Seal.AWSKMS.Endpoint); err == nil {
			out = append(out, outgoing{"AWS KMS at " + u.Host + " (seal.awskms.endpoint)", u.Host, u.Scheme == "https"})
		}
	}
	if c.RedisURL != "" {
		for _, h := range urlHosts(c.RedisURL) {
			enc := strings.HasPrefix(c.RedisURL, "rediss")
			out = append(out, outgoing{"Redis at " + h + " (redis_url)", h, enc})
		}
	}
	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			u = strings.TrimSpace(u)
			for _, h := range urlHosts(u) {
				enc := strings.HasPrefix(u, "tls://") || c.Events.TLS.Set()
				out = append(out, outgoing{"NATS at " + h + " (nats_url)", h, enc})
			}
		}
	}
	if roles := ExpandRoles(c.Roles); c.Gateway.AuthURL != "" && slices.Contains(roles, RoleGateway) && !slices.Contains(roles, RoleAuth) {
		if u, err := url.Parse(c.Gateway.AuthURL); err == nil {
			out = append(out, outgoing{"the auth role at " + u.Host + " (gateway.auth_url)", u.Host, u.Scheme == "https"})
		}
	}
	if c.KVBackend() == "dynamodb" && c.DynamoDBEndpoint != "" {
		if u, err := url.Parse(c.DynamoDBEndpoint); err == nil {
			out = append(out, outgoing{"DynamoDB at " + u.Host + " (dynamodb_endpoint)", u.Host, u.Scheme == "https"})
		}
	}
	return out
}

// appendPostgres adds the PostgreSQL database of setting, if raw names
// one (not a SQLite file): encrypted when its sslmode makes TLS required.
func appendPostgres(out []outgoing, raw, setting string) []outgoing {
	if raw == "" || strings.HasPrefix(raw, "sqlite") {
		return out
	}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	mode := u.Query().Get("sslmode")
	enc := mode == "require" || mode == "verify-ca" || mode == "verify-full"
	return append(out, outgoing{"PostgreSQL at " + u.Host + " (" + setting + " sslmode=" + mode + ")", u.Host, enc})
}

// urlHosts returns the hosts of a URL whose authority may list several
// (redis-cluster://a:1,b:2/0).
func urlHosts(s string) []string {
	_, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	var hosts []string
	for _, h := range strings.Split(rest, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// CheckOutgoingTLS applies security.require_tls to every connection c
// makes, and warns about plaintext to another machine when it is off.
func CheckOutgoingTLS(c Config, log *slog.Logger) error {
	for _, o := range outgoingConnections(c) {
		if err := certs.RequireTLS(c.Security.RequireTLS, o.what, o.host, o.encrypted); err != nil {
			return err
		}
		if !o.encrypted && !certs.Loopback(o.host) {
			log.Warn("connection to another machine without TLS; set security.require_tls to refuse it", "to", o.what)
		}
	}
	return nil
}

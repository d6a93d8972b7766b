package auth

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/config"
)

// OIDCConfig trusts external identity providers: Amazon Cognito or any
// OpenID Connect issuer. Each issuer is one line of settings (the
// configuration tree holds plain values, so an issuer is written as
// space-separated key=value pairs, lists joined by "|"):
//
//	name=cognito issuer=https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCd audience=7abc token_use=id|access groups_claim=cognito:groups roles=admins:admin
type OIDCConfig struct {
	Issuers        []string      `yaml:"issuers" help:"trusted OpenID Connect issuers, one entry each: name=N issuer=URL audience=A|B [algorithms=RS256|ES256] [token_use=id|access] [subject_claim=sub] [groups_claim=cognito:groups roles=group:role|...] (docs/operations.md)"`
	Refresh        time.Duration `yaml:"refresh" help:"how old an issuer's discovery document and keys (JWKS) may get before they are fetched again"`
	RefetchMinimum time.Duration `yaml:"refetch_minimum" help:"a token naming a key (kid) the cached JWKS lacks fetches it again at most once per this interval, per issuer"`
	HTTPTimeout    time.Duration `yaml:"http_timeout" help:"time limit of one fetch from an issuer (discovery document or JWKS)"`
}

// DefaultOIDCConfig returns the defaults: no issuer trusted.
func DefaultOIDCConfig() OIDCConfig {
	return OIDCConfig{Refresh: time.Hour, RefetchMinimum: time.Minute, HTTPTimeout: 5 * time.Second}
}

// IssuerConfig is one trusted issuer, parsed from its line.
type IssuerConfig struct {
	Name       string   // the name clients may give; also in audit rows
	Issuer     string   // the iss claim and the base of the discovery URL
	Audiences  []string // accepted aud (ID tokens) or, in a token without aud, client_id (Cognito access tokens)
	Algorithms []string // accepted signature algorithms (default RS256)
	// TokenUse, when set, are the token_use claims accepted (Cognito: id,
	// access); a token without the claim is then refused.
	TokenUse     []string
	SubjectClaim string            // the claim naming the user (default sub)
	GroupsClaim  string            // a claim listing the user's groups (Cognito: cognito:groups)
	GroupRoles   map[string]string // group → multijuego role
}

// asymmetricAlgs are the algorithms an issuer may be trusted with: a
// public-key signature. HMAC (HS*) would verify with a secret the issuer
// shares, "none" with nothing.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

var issuerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ParseIssuer reads one issuer line.
func ParseIssuer(line string) (IssuerConfig, error) {
	c := IssuerConfig{Algorithms: []string{"RS256"}, SubjectClaim: "sub"}
	list := func(v string) []string { return strings.Split(v, "|") }
	var roles []string
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" {
			return c, fmt.Errorf("%q is not key=value", f)
		}
		switch k {
		case "name":
			c.Name = v
		case "issuer":
			c.Issuer = v
		case "audience":
			c.Audiences = list(v)
		case "algorithms":
			c.Algorithms = list(v)
		case "token_use":
			c.TokenUse = list(v)
		case "subject_claim":
			c.SubjectClaim = v
		case "groups_claim":
			c.GroupsClaim = v
		case "roles":
			roles = list(v)
		default:
			return c, fmt.Errorf("unknown setting %q", k)
		}
	}
	if !issuerNameRE.MatchString(c.Name) {
		return c, fmt.Errorf("name=%q must be 1 to 32 of a-z 0-9 _ -", c.Name)
	}
	if err := checkIssuerURL(c.Issuer); err != nil {
		return c, fmt.Errorf("%s: %w", c.Name, err)
	}
	if len(c.Audiences) == 0 {
		return c, fmt.Errorf("%s: audience= is required (the client id the tokens are issued to)", c.Name)
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(asymmetricAlgs, a) {
			return c, fmt.Errorf("%s: algorithm %q is not allowed (one of %s)", c.Name, a, strings.Join(asymmetricAlgs, ", "))
		}
	}
	for _, u := range c.TokenUse {
		if u != "id" && u != "access" {
			return c, fmt.Errorf("%s: token_use %q must be id or access", c.Name, u)
		}
	}
	if len(roles) > 0 && c.GroupsClaim == "" {
		return c, fmt.Errorf("%s: roles= needs groups_claim=", c.Name)
	}
	c.GroupRoles = map[string]string{}
	for _, gr := range roles {
		g, r, ok := strings.Cut(gr, ":")
		if !ok || g == "" || !ValidRole(r) {
			return c, fmt.Errorf("%s: roles entry %q must be group:role with role player, admin or service", c.Name, gr)
		}
		c.GroupRoles[g] = r
	}
	return c, nil
}

// checkIssuerURL wants https, or http to a loopback address (tests and a
// provider on the same host).
func checkIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer=%q is not an absolute URL without query", s)
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip, err := netip.ParseAddr(u.Hostname()); u.Scheme == "http" && (u.Hostname() == "localhost" || err == nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("issuer=%q must be https (http only on loopback)", s)
}

// Parsed returns the issuers, or the first line's error.
func (c OIDCConfig) Parsed() ([]IssuerConfig, error) {
	var out []IssuerConfig
	for i, line := range c.Issuers {
		ic, err := ParseIssuer(line)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		for _, o := range out {
			if o.Name == ic.Name || o.Issuer == ic.Issuer {
				return nil, fmt.Errorf("entry %d: name %q or issuer %q given twice", i+1, ic.Name, ic.Issuer)
			}
		}
		out = append(out, ic)
	}
	return out, nil
}

// Validate records every invalid key under prefix.
func (c OIDCConfig) Validate(v *config.Validator, prefix string) {
	k := func(name string) string { return prefix + "." + name }
	_, err := c.Parsed()
	v.Check(err == nil, k("issuers"), "%v", err)
	v.Check(c.Refresh >= time.Minute, k("refresh"), "must be at least 1m, got %s", c.Refresh)
	v.Check(c.RefetchMinimum >= time.Second && c.RefetchMinimum <= c.Refresh, k("refetch_minimum"), "must be between 1s and refresh, got %s", c.RefetchMinimum)
	v.Check(c.HTTPTimeout >= 100*time.Millisecond && c.HTTPTimeout <= time.Minute, k("http_timeout"), "must be between 100ms and 1m, got %s", c.HTTPTimeout)
}

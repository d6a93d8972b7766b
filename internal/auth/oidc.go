package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/multijuego/multijuego/internal/errcode"
)

// oidcVerifier checks tokens of the trusted external issuers.
type oidcVerifier struct {
	issuers []*issuerKeys
	skew    time.Duration
	now     func() time.Time
}

func newOIDCVerifier(cfg OIDCConfig, skew time.Duration, hc *http.Client, now func() time.Time) (*oidcVerifier, error) {
	ics, err := cfg.Parsed()
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: cfg.HTTPTimeout}
	}
	v := &oidcVerifier{skew: skew, now: now}
	for _, ic := range ics {
		v.issuers = append(v.issuers, &issuerKeys{cfg: ic, hc: hc, now: now, refresh: cfg.Refresh, refetch: cfg.RefetchMinimum})
	}
	return v, nil
}

// externalID is who a verified external token says the caller is.
type externalID struct {
	issuer  *IssuerConfig
	subject string
	groups  []string
}

// maxIdentityToken bounds a token we decode (Cognito's with many groups
// stay far below).
const maxIdentityToken = 16 << 10

// jwtHeader is the part of a JOSE header we read before verifying.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

func identityErr(code errcode.Code, msg string) *errcode.Error {
	return &errcode.Error{Code: code, Field: "token", Message: msg}
}

var errIdentityMalformed = identityErr(errcode.IdentityInvalid, "The identity token is not a well-formed signed JWT.")

// decodeIdentityToken reads a compact JWS's header and claims without
// verifying anything: enough to pick the issuer, its key and refuse a
// forbidden algorithm before any signature work. Only the signed form
// (three parts) is accepted; an encrypted token (five) is malformed here.
func decodeIdentityToken(raw string) (jwtHeader, map[string]any, error) {
	var h jwtHeader
	if len(raw) > maxIdentityToken || strings.Count(raw, ".") != 2 {
		return h, nil, errIdentityMalformed
	}
	parts := strings.SplitN(raw, ".", 3)
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if errors.Join(err1, err2) != nil {
		return h, nil, errIdentityMalformed
	}
	if json.Unmarshal(hb, &h) != nil {
		return h, nil, errIdentityMalformed
	}
	var claims map[string]any
	d := json.NewDecoder(bytes.NewReader(cb))
	d.UseNumber()
	if d.Decode(&claims) != nil || claims == nil || d.More() {
		return h, nil, errIdentityMalformed
	}
	return h, claims, nil
}

// issuerFor picks the issuer: the one named (whose iss the token must
// carry), or the one whose iss the token carries.
func (v *oidcVerifier) issuerFor(name, iss string) (*issuerKeys, error) {
	for _, k := range v.issuers {
		if name != "" && k.cfg.Name == name {
			if k.cfg.Issuer != iss {
				return nil, identityErr(errcode.IdentityIssuer, "The identity token was not issued by "+name+".")
			}
			return k, nil
		}
		if name == "" && k.cfg.Issuer == iss {
			return k, nil
		}
	}
	if name != "" {
		return nil, &errcode.Error{Code: errcode.Invalid, Field: "issuer", Message: "No identity provider named " + name + " is configured."}
	}
	return nil, identityErr(errcode.IdentityIssuer, "The identity token's issuer is not trusted by this server.")
}

// verify checks raw, an ID token or access token of a trusted issuer: its
// algorithm, signature, issuer, times, audience (or client_id) and
// token_use. Every refusal is a 401 domain error naming the reason, but
// an issuer that cannot be reached, which is 503.
func (v *oidcVerifier) verify(ctx context.Context, raw, name string) (externalID, error) {
	h, claims, err := decodeIdentityToken(raw)
	if err != nil {
		return externalID{}, err
	}
	iss, _ := claims["iss"].(string)
	ik, err := v.issuerFor(name, iss)
	if err != nil {
		return externalID{}, err
	}
	ic := &ik.cfg
	if !slices.Contains(ic.Algorithms, h.Alg) {
		return externalID{}, identityErr(errcode.IdentityAlgorithm, "The identity token is signed with "+algName(h.Alg)+", which is not accepted from "+ic.Name+".")
	}
	key, err := ik.key(ctx, h.Kid)
	switch {
	case errors.Is(err, errUnknownKey):
		return externalID{}, identityErr(errcode.IdentityKey, "The identity token names a signing key "+ic.Name+" does not publish.")
	case err != nil:
		return externalID{}, &errcode.Error{Code: errcode.Unavailable, RetryAfter: 5 * time.Second, Message: "The identity provider " + ic.Name + " could not be reached; try again."}
	}
	p := jwt.NewParser(jwt.WithValidMethods(ic.Algorithms), jwt.WithIssuer(ic.Issuer), jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.skew), jwt.WithTimeFunc(v.now))
	if _, err := p.Parse(raw, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenNotValidYet) {
			return externalID{}, identityErr(errcode.IdentityExpired, "The identity token has expired (or is not valid yet).")
		}
		return externalID{}, identityErr(errcode.IdentityInvalid, "The identity token's signature or claims do not verify.")
	}
	return checkIdentityClaims(ic, claims)
}

// algName quotes an alg for a message.
func algName(alg string) string {
	if alg == "" {
		return "no algorithm"
	}
	if len(alg) > 16 {
		alg = alg[:16]
	}
	return strconv.Quote(alg)
}

// checkIdentityClaims checks the claims jwt does not: audience or
// client_id, token_use, and reads the subject and groups.
func checkIdentityClaims(ic *IssuerConfig, claims map[string]any) (externalID, error) {
	aud := stringList(claims["aud"])
	if len(aud) == 0 {
		// A Cognito access token has no aud: its client is client_id.
		if cid, ok := claims["client_id"].(string); ok {
			aud = []string{cid}
		}
	}
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(ic.Audiences, a) }) {
		return externalID{}, identityErr(errcode.IdentityAudience, "The identity token was issued to another client (aud or client_id).")
	}
	if len(ic.TokenUse) > 0 {
		if use, _ := claims["token_use"].(string); !slices.Contains(ic.TokenUse, use) {
			return externalID{}, identityErr(errcode.IdentityTokenUse, "The identity token's token_use is not accepted (allowed: "+strings.Join(ic.TokenUse, ", ")+").")
		}
	}
	sub, _ := claims[ic.SubjectClaim].(string)
	if sub == "" || len(sub) > 255 {
		return externalID{}, identityErr(errcode.IdentityInvalid, "The identity token has no subject ("+ic.SubjectClaim+").")
	}
	id := externalID{issuer: ic, subject: sub}
	if ic.GroupsClaim != "" {
		id.groups = stringList(claims[ic.GroupsClaim])
	}
	return id, nil
}

// stringList reads a claim that is a string or an array of strings;
// anything else is empty.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// roles are the multijuego roles id's groups map to: player always, and
// every role a group of the user maps to.
func (id externalID) roles() []string {
	roles := []string{RolePlayer}
	for _, g := range id.groups {
		if r, ok := id.issuer.GroupRoles[g]; ok && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}

// Package errcode defines the domain error that every service returns when a
// caller did something wrong: a stable machine code, a message fit for the
// user, and optionally the request field at fault. The gateway translates the
// code into an HTTP status or a WebSocket close code in one place; any other
// error is internal and its text never reaches a user.
package errcode

import (
	"errors"
	"fmt"
	"time"
)

// Code is a stable, machine-readable error code. Clients switch on it.
type Code string

// The codes. Adding one means adding its HTTP status in the gateway.
const (
	Invalid          Code = "invalid_argument"   // the request is malformed or a value is out of range
	Unauthenticated  Code = "unauthenticated"    // missing, expired, revoked or wrong credentials
	PermissionDenied Code = "permission_denied"  // authenticated, but the role does not allow it
	NotFound         Code = "not_found"          // the named thing does not exist
	Conflict         Code = "conflict"           // unique value taken, or a state that forbids the change
	RateLimited      Code = "rate_limited"       // too many attempts; RetryAfter says when to come back
	TooLarge         Code = "payload_too_large"  // body or frame over the limit
	Unavailable      Code = "unavailable"        // overloaded or a dependency is down; retry later
	Internal         Code = "internal"           // anything else; details are logged, never returned
	Banned           Code = "account_banned"     // the account is banned
	Unsupported      Code = "unsupported_media"  // wrong content type
	MethodNotAllowed Code = "method_not_allowed" // wrong HTTP method for the route
	Busy             Code = "busy"               // too much work already queued for this caller or server; retry shortly
	Timeout          Code = "timeout"            // the operation did not finish in time; it may still be carried out

	// An external identity token (OpenID Connect, Cognito) refused, each
	// reason its own code (all 401).
	IdentityInvalid   Code = "identity_token_invalid" // malformed, a signature that does not verify, or no subject
	IdentityIssuer    Code = "identity_issuer"        // iss is not a trusted issuer (or not the one named)
	IdentityAudience  Code = "identity_audience"      // aud (or a Cognito access token's client_id) is not an accepted client
	IdentityExpired   Code = "identity_token_expired" // past exp, or before nbf
	IdentityAlgorithm Code = "identity_algorithm"     // alg none, HMAC, or an algorithm the issuer is not trusted with
	IdentityKey       Code = "identity_key_unknown"   // kid names no key of the issuer's JWKS, even fetched again
	IdentityTokenUse  Code = "identity_token_use"     // token_use (Cognito: id or access) not accepted
)

// Error is a domain error with a code.
type Error struct {
	Code       Code
	Message    string        // safe to show to the user
	Field      string        // the request field at fault, if any
	RetryAfter time.Duration // for RateLimited, Unavailable and Busy
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// New returns an error with code and message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field returns an Invalid error about one request field.
func Field(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// As returns the domain error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool {
	e := As(err)
	return e != nil && e.Code == code
}

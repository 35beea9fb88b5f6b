package identity

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Reason is a short, stable, low-cardinality code for why a token was
// refused. It is the value of the reason label of
// pgproxy_auth_failures_total.
type Reason string

// The reasons Validate can give.
const (
	ReasonTokenTooLarge        Reason = "token_too_large"
	ReasonMalformedToken       Reason = "malformed_token"
	ReasonUnsupportedAlgorithm Reason = "unsupported_algorithm"
	ReasonUnknownKey           Reason = "unknown_key"
	ReasonBadSignature         Reason = "bad_signature"
	ReasonIssuerUnavailable    Reason = "issuer_unavailable"
	ReasonWrongIssuer          Reason = "wrong_issuer"
	ReasonTokenExpired         Reason = "token_expired"
	ReasonTokenNotYetValid     Reason = "token_not_yet_valid"
	ReasonWrongAudience        Reason = "wrong_audience"
	ReasonMissingIdentity      Reason = "missing_identity"
	ReasonMissingRole          Reason = "missing_role"
	ReasonDatabaseNotAllowed   Reason = "database_not_allowed"
	// ReasonInternal is what ReasonOf reports for an error that is not an
	// *Error; Validate itself never returns one.
	ReasonInternal Reason = "internal"
)

// Reasons lists every Reason, so a metrics collector can create all label
// values up front.
func Reasons() []Reason {
	return []Reason{
		ReasonTokenTooLarge, ReasonMalformedToken, ReasonUnsupportedAlgorithm,
		ReasonUnknownKey, ReasonBadSignature, ReasonIssuerUnavailable,
		ReasonWrongIssuer, ReasonTokenExpired, ReasonTokenNotYetValid,
		ReasonWrongAudience, ReasonMissingIdentity, ReasonMissingRole,
		ReasonDatabaseNotAllowed, ReasonInternal,
	}
}

// Error is a refused token. Message is safe to send to the client (in an
// ErrorResponse with SQLSTATE 28000): it says what was wrong and never
// contains the token. The wrapped cause is for logs only.
type Error struct {
	Reason  Reason
	Message string
	cause   error
}

// Sentinels for errors.Is: errors.Is(err, identity.ErrTokenExpired) holds for
// any *Error with that Reason.
var (
	ErrTokenTooLarge        = &Error{Reason: ReasonTokenTooLarge}
	ErrMalformedToken       = &Error{Reason: ReasonMalformedToken}
	ErrUnsupportedAlgorithm = &Error{Reason: ReasonUnsupportedAlgorithm}
	ErrUnknownKey           = &Error{Reason: ReasonUnknownKey}
	ErrBadSignature         = &Error{Reason: ReasonBadSignature}
	ErrIssuerUnavailable    = &Error{Reason: ReasonIssuerUnavailable}
	ErrWrongIssuer          = &Error{Reason: ReasonWrongIssuer}
	ErrTokenExpired         = &Error{Reason: ReasonTokenExpired}
	ErrTokenNotYetValid     = &Error{Reason: ReasonTokenNotYetValid}
	ErrWrongAudience        = &Error{Reason: ReasonWrongAudience}
	ErrMissingIdentity      = &Error{Reason: ReasonMissingIdentity}
	ErrMissingRole          = &Error{Reason: ReasonMissingRole}
	ErrDatabaseNotAllowed   = &Error{Reason: ReasonDatabaseNotAllowed}
)

// Error implements error; it includes the internal cause.
func (e *Error) Error() string {
	s := "identity: " + string(e.Reason)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is a sentinel (an *Error without a message)
// with the same Reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.cause == nil && t.Reason == e.Reason
}

// ReasonOf returns the Reason of err: "" for nil, ReasonInternal when err is
// not an *Error.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonInternal
}

// refuse builds an *Error.
func refuse(r Reason, cause error, format string, args ...any) *Error {
	return &Error{Reason: r, Message: fmt.Sprintf(format, args...), cause: cause}
}

// quoteClaim renders a claim value for a message: quoted, at most 64 bytes,
// so a hostile token cannot flood logs or the client's screen.
func quoteClaim(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}

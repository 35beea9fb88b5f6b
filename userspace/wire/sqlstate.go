package wire

// SQLSTATE codes the proxy sends or recognises (PostgreSQL's Appendix A).
const (
	CodeFeatureNotSupported          = "0A000"
	CodeConnectionFailure            = "08006"
	CodeConnectionRejected           = "08004" // sqlserver_rejected_establishment_of_sqlconnection
	CodeProtocolViolation            = "08P01"
	CodeReadOnlyTransaction          = "25006"
	CodeInFailedTransaction          = "25P02"
	CodeInvalidAuthorization         = "28000"
	CodeInvalidPassword              = "28P01"
	CodeInvalidCatalogName           = "3D000" // unknown database
	CodeInsufficientPrivilege        = "42501"
	CodeTooManyConnections           = "53300"
	CodeProgramLimitExceeded         = "54000"
	CodeAdminShutdown                = "57P01"
	CodeCannotConnectNow             = "57P03"
	CodeObjectNotInPrerequisiteState = "55000"
	CodeInternalError                = "XX000"
)

// Severities of an ErrorResponse.
const (
	SeverityError = "ERROR"
	SeverityFatal = "FATAL"
)

// Fatal returns a FATAL error: the connection ends after it.
func Fatal(code, message string) *Error {
	return &Error{Severity: SeverityFatal, Code: code, Message: message}
}

// Refusal returns an ERROR: the statement fails, the session goes on.
func Refusal(code, message string) *Error {
	return &Error{Severity: SeverityError, Code: code, Message: message}
}

// WithDetail returns a copy of e with a DETAIL.
func (e *Error) WithDetail(detail string) *Error {
	c := *e
	c.Detail = detail
	return &c
}

// WithHint returns a copy of e with a HINT.
func (e *Error) WithHint(hint string) *Error {
	c := *e
	c.Hint = hint
	return &c
}

// Package auth holds client-authentication policies the session calls: token
// (JWT/OIDC) authentication onto a service account, and the guard that keeps
// the audited application_name unchanged.
package auth

import (
	"context"
	"errors"

	"github.com/pgproxy/pgproxy/userspace/identity"
	"github.com/pgproxy/pgproxy/userspace/session"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Token authenticates clients whose password is a JWT.
type Token struct {
	Validator *identity.Validator
	Parser    *sqlparse.Parser
}

// Authenticate validates the token and grants a login whose
// application_name is jwt:<identity>, locked for the session.
func (t *Token) Authenticate(ctx context.Context, token, database string) (*session.Login, error) {
	id, err := t.Validator.Validate(ctx, token, database)
	if err != nil {
		var ie *identity.Error
		if errors.As(err, &ie) {
			return nil, &session.AuthError{Reason: string(ie.Reason), Message: ie.Message}
		}
		return nil, &session.AuthError{Reason: "internal", Message: "token could not be checked"}
	}
	app := identity.ApplicationName(id.Name)
	return &session.Login{
		Identity: id.Name,
		Database: database,
		Params:   []wire.Param{{Name: "application_name", Value: app}},
		Locked:   map[string]string{"application_name": app},
		Check:    t.guardApplicationName,
	}, nil
}

// guardApplicationName refuses statements that would change
// application_name: SET, SET LOCAL, RESET, set_config() and pg_settings
// updates, found in the parse tree. Text the parser rejects goes on: the
// server rejects it too.
func (t *Token) guardApplicationName(sql string) *wire.Error {
	parsed := t.Parser.Parse(sql)
	if parsed.Err != nil || !sqlparse.ChangesSetting(parsed.Tree, "application_name") {
		return nil
	}
	return &wire.Error{Severity: "ERROR", Code: "42501",
		Message: "application_name is set by pgproxy to the authenticated identity and cannot be changed"}
}

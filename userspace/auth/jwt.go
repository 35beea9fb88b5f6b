// Package auth holds client-authentication policies the session calls: token
// (JWT/OIDC) authentication onto a service account, and the statement
// policy that keeps the audited application_name unchanged.
package auth

import (
	"context"
	"errors"

	"github.com/pgproxy/pgproxy/userspace/identity"
	"github.com/pgproxy/pgproxy/userspace/session"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Token authenticates clients whose password is a JWT.
type Token struct {
	Validator *identity.Validator
}

// Secret implements session.Authenticator.
func (t *Token) Secret() string { return "token" }

// Authenticate validates the token and grants a login whose
// application_name is jwt:<identity>, locked for the session.
func (t *Token) Authenticate(ctx context.Context, req session.AuthRequest) (*session.Login, error) {
	database := req.Database
	id, err := t.Validator.Validate(ctx, req.Password, database)
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
		Roles:    id.Roles,
		Database: database,
		Params:   []wire.Param{{Name: "application_name", Value: app}},
		Locked:   map[string]string{"application_name": app},
	}, nil
}

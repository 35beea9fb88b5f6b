package auth

import (
	"context"

	"github.com/pgproxy/pgproxy/userspace/session"
)

// Password lets the proxy log in with the client's own user and password
// instead of relaying the server's challenge: the proxy asks the client for
// its password (cleartext, so over TLS only when TLS is on), and the backend
// checks it when the proxy logs in (SCRAM, MD5 or cleartext, as the server
// asks). Shunt mode uses it for passthrough sessions: the shunt connection
// logs in as the same user, so a client never has on the shunt node
// privileges it does not have on the fast node. A wrong password is
// refused by the server at that login, with its own error.
type Password struct{}

// Secret implements session.Authenticator.
func (Password) Secret() string { return "password" }

// Authenticate implements session.Authenticator.
func (Password) Authenticate(_ context.Context, req session.AuthRequest) (*session.Login, error) {
	if req.User == "" {
		return nil, &session.AuthError{Reason: "missing_user", Message: "no user name in the startup packet"}
	}
	return &session.Login{
		Database:    req.Database,
		Credentials: &session.Credentials{User: req.User, Password: req.Password},
	}, nil
}

package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Authenticator authenticates clients itself (a JWT sent as the password,
// or the client's own password that the proxy then logs in with) instead of
// relaying the backend's challenge, and says how the session logs in to the
// backend.
type Authenticator interface {
	Authenticate(ctx context.Context, req AuthRequest) (*Login, error)
	// Secret names what the client sends as its password ("token",
	// "password"), for the messages of refusals before Authenticate.
	Secret() string
}

// AuthRequest is what a client gave to authenticate: its startup user and
// database ("" when it asked for the default) and its password message.
type AuthRequest struct {
	User, Database, Password string
}

// AuthError is an Authenticator's refusal: Reason labels the
// pgproxy_auth_failures_total metric, Message goes to the client (28000).
type AuthError struct {
	Reason  string
	Message string
	Hint    string
}

func (e *AuthError) Error() string { return e.Message }

// Login is what an Authenticator grants.
type Login struct {
	// Identity names the person, for logs and statement policies.
	Identity string
	// Roles are the token's roles and groups, for statement policies.
	Roles []string
	// Database is the backend database; empty means the configured default.
	Database string
	// Params are startup parameters set for the backend, replacing the
	// client's values (application_name=jwt:<identity>).
	Params []wire.Param
	// Locked are run-time settings that must keep these values for the whole
	// session: a ParameterStatus showing another value ends the session, and
	// statement policies see them in stmt.Facts.Locked.
	Locked map[string]string
	// User is the database user the proxy logs in as (set by the session).
	User string
	// Credentials, when set, are the client's own (checked by the backend
	// at login): the proxy logs in with them instead of the service account,
	// to every backend of the session. The password stays in memory for the
	// session's life (a shunt connection may open later) and is never
	// logged.
	Credentials *Credentials
}

// Credentials are a database user and password.
type Credentials struct {
	User, Password string
}

// LoginRequest is one login the proxy makes itself.
type LoginRequest struct {
	Database string
	Params   []wire.Param
	// Credentials replace the configured account when set.
	Credentials *Credentials
	// Replay are statements run right after the login, before the
	// connection joins the session (the settings of a session that moves
	// to a second backend).
	Replay []string
}

// Established is a backend connection logged in by the proxy itself.
type Established struct {
	Conn      net.Conn
	Encrypted bool
	PID       uint32
	Secret    []byte
	Params    map[string]string
	TxStatus  byte
}

// LoginDialer opens a backend connection logged in by the proxy: as the
// configured service account, or with the request's credentials.
type LoginDialer func(ctx context.Context, req LoginRequest) (*Established, error)

// maxPasswordMessage bounds the token a client may send (tokens up to 16 KiB
// are accepted; the authenticator reports anything larger clearly).
const maxPasswordMessage = 64 << 10

// runLogin authenticates the client with the Authenticator, then logs in to
// the backend itself and replays the greeting the client expects.
func (s *Session) runLogin(ctx context.Context) error {
	secret := s.Authenticator.Secret()
	if s.Config.ClientTLS != nil && !s.clientTLS {
		reason := "plaintext_" + secret
		s.Metrics.AuthFailure(reason)
		return &AuthError{Reason: reason, Message: secret + " authentication needs a TLS connection",
			Hint: "connect with sslmode=require or stronger: the " + secret + " travels to pgproxy in clear otherwise"}
	}
	s.cr = wire.NewReader(s.client, bufSize, maxPasswordMessage)
	if _, err := s.client.Write(wire.Append(nil, &pgproto3.AuthenticationCleartextPassword{})); err != nil {
		return err
	}
	typ, msg, err := s.cr.Next()
	if errors.Is(err, wire.ErrMessageTooLarge) {
		reason := secret + "_too_large"
		s.Metrics.AuthFailure(reason)
		s.lingerOnClose.Store(true)
		return &AuthError{Reason: reason, Message: secret + " is too large (" + secret + "s are limited to 16 KiB)"}
	}
	if err != nil {
		return err
	}
	if typ != 'p' {
		return fmt.Errorf("%w: expected a password message, got %q", wire.ErrProtocol, typ)
	}
	var password pgproto3.PasswordMessage
	if err := wire.Decode(msg, &password); err != nil {
		return fmt.Errorf("%w: malformed password message", wire.ErrProtocol)
	}
	requested, _ := s.startup.Get("database")
	if requested == s.Config.DefaultDatabase {
		requested = ""
	}
	// The check may wait for the issuer's next key download: end it 500 ms
	// before the startup deadline (but give it at least 100 ms), so that its
	// refusal still reaches the client in time.
	deadline := s.startupDeadline.Add(-500 * time.Millisecond)
	if soon := time.Now().Add(100 * time.Millisecond); deadline.Before(soon) {
		deadline = soon
	}
	authCtx, cancel := context.WithDeadline(ctx, deadline)
	login, err := s.Authenticator.Authenticate(authCtx, AuthRequest{User: s.user(), Database: requested, Password: password.Password})
	cancel()
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			s.Metrics.AuthFailure(ae.Reason)
			s.Log.Info("token refused", "reason", ae.Reason)
			return ae
		}
		s.Metrics.AuthFailure("internal")
		return &AuthError{Reason: "internal", Message: "token could not be checked"}
	}
	s.login = login
	if login.Identity != "" {
		s.Log = s.Log.With("identity", login.Identity)
	}
	s.cr.SetMax(s.Config.MaxMessageSize)
	return s.loginBackend(ctx, login)
}

// backendParams are the client's startup parameters that go on to the
// backend under a proxy login: session settings, not identity.
func (s *Session) backendParams(login *Login) []wire.Param {
	var out []wire.Param
	for _, p := range s.startup.Params {
		// Setting names are case-insensitive in PostgreSQL: APPLICATION_NAME
		// must not slip past the proxy's own value.
		name := strings.ToLower(p.Name)
		switch name {
		case "user", "database", "replication":
			continue
		}
		if _, locked := login.Locked[name]; locked {
			continue
		}
		out = append(out, p)
	}
	return append(out, login.Params...)
}

func (s *Session) loginBackend(ctx context.Context, login *Login) error {
	db := login.Database
	if db == "" {
		db = s.Config.DefaultDatabase
	}
	est, err := s.LoginDial(ctx, LoginRequest{Database: db, Params: s.backendParams(login), Credentials: login.Credentials})
	if err != nil {
		var we *wire.Error
		if login.Credentials != nil && errors.As(err, &we) {
			// The client's own credentials, refused by the server: it gets
			// the server's error, as in passthrough.
			s.Metrics.AuthFailure(backendRefusalReason(we.Code))
			s.Log.Info("backend refused authentication", "sqlstate", we.Code)
			return we
		}
		s.Log.Warn("backend login as the service account failed", "err", err)
		s.Metrics.Rejected("backend_login_failed")
		return errLoginFailed{err}
	}
	s.setBackend(est.Conn, est.Encrypted)
	login.User = est.Params["session_authorization"]
	if enc, ok := est.Params["client_encoding"]; ok {
		s.setClientEncoding(enc)
	}
	for name, value := range est.Params {
		if e := s.Config.Settings.reported(name, value); e != nil {
			return e
		}
	}
	for name, want := range login.Locked {
		if got, ok := est.Params[name]; ok && got != want {
			s.Log.Warn("backend reported a locked setting with another value at login", "setting", name)
			return wire.Fatal(wire.CodeInsufficientPrivilege,
				fmt.Sprintf("%s is set by pgproxy for auditing and cannot be chosen by the client", name))
		}
	}
	s.br = wire.NewReader(s.backend, bufSize, 1<<30)
	s.bw = newWriter(s.backend)
	s.cw = newWriter(s.client)
	out := wire.Append(nil, &pgproto3.AuthenticationOk{})
	names := make([]string, 0, len(est.Params))
	for k := range est.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = wire.Append(out, &pgproto3.ParameterStatus{Name: k, Value: est.Params[k]})
	}
	s.registerCancel(est.PID, est.Secret)
	out = s.key.append(out)
	out = wire.Append(out, &pgproto3.ReadyForQuery{TxStatus: est.TxStatus})
	_, err = s.client.Write(out)
	return err
}

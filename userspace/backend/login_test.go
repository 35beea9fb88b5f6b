package backend

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/session"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// libpqEnvironment sets, for the test, libpq variables that pgconn would merge
// into a configuration it parses.
func libpqEnvironment(t *testing.T) {
	pgpass := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pgpass, []byte("*:*:*:*:from-pgpass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"PGPASSWORD":           "from-environment",
		"PGPASSFILE":           pgpass,
		"PGOPTIONS":            "-c search_path=evil",
		"PGAPPNAME":            "from-environment",
		"PGTZ":                 "Pacific/Apia",
		"PGTARGETSESSIONATTRS": "read-write",
		"PGUSER":               "env_user",
		"PGDATABASE":           "env_db",
		"PGHOST":               "env.example",
		"PGPORT":               "1",
		"PGSSLMODE":            "verify-full",
		"PGSSLROOTCERT":        "/nonexistent/root.crt",
		"PGCONNECT_TIMEOUT":    "soon",
		"PGCHANNELBINDING":     "require",
		"PGMAXPROTOCOLVERSION": "3.2",
		"PGREQUIREAUTH":        "md5",
	} {
		t.Setenv(k, v)
	}
}

func parseBackend(t *testing.T, raw string) config.BackendURL {
	t.Helper()
	b, err := config.ParseBackendURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewLoginIgnoresLibpqEnvironment(t *testing.T) {
	libpqEnvironment(t)
	l, err := NewLogin(parseBackend(t, "postgres://svc:s3cret@db.internal:6432/app?sslmode=require"), &Dialer{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := l.base
	if c.Host != "db.internal" || c.Port != 6432 || c.Database != "app" || c.User != "svc" || c.Password != "s3cret" {
		t.Errorf("login: %s@%s:%d/%s password %q", c.User, c.Host, c.Port, c.Database, c.Password)
	}
	if len(c.RuntimeParams) != 0 || c.ValidateConnect != nil || len(c.Fallbacks) != 0 || c.TLSConfig != nil ||
		c.ChannelBinding != "prefer" || c.RequireAuth != "" || c.MaxProtocolVersion != "3.0" || c.KerberosSrvName != "" {
		t.Errorf("the environment reached the login: runtime params %v, validate %v, fallbacks %d, TLS %v, "+
			"channel_binding %q, require_auth %q, max protocol %q", c.RuntimeParams, c.ValidateConnect != nil,
			len(c.Fallbacks), c.TLSConfig != nil, c.ChannelBinding, c.RequireAuth, c.MaxProtocolVersion)
	}

	// Without a password in the URL (trust), neither PGPASSWORD nor the passfile fills one in.
	l, err = NewLogin(parseBackend(t, "postgres://svc@db.internal/app"), &Dialer{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.base.Password != "" {
		t.Errorf("password %q from the environment", l.base.Password)
	}
}

func TestNewLoginURLParameters(t *testing.T) {
	l, err := NewLogin(parseBackend(t,
		"postgres://svc:pw@h/app?channel_binding=require&target_session_attrs=read-write&require_auth=scram-sha-256&application_name=x&options=-csearch_path%3Devil"),
		&Dialer{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := l.base
	if c.ChannelBinding != "require" || c.ValidateConnect == nil || c.RequireAuth != "scram-sha-256" || len(c.RuntimeParams) != 0 {
		t.Errorf("URL parameters: channel_binding %q, validate %v, require_auth %q, runtime params %v",
			c.ChannelBinding, c.ValidateConnect != nil, c.RequireAuth, c.RuntimeParams)
	}
	_, err = NewLogin(parseBackend(t, "postgres://svc:pw@h/app?target_session_attrs=sometimes"), &Dialer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "PG_BACKEND_URL") {
		t.Errorf("a bad target_session_attrs: %v", err)
	}
	if l, err := NewLogin(parseBackend(t, "postgres://h/app"), &Dialer{}, nil); err != nil {
		t.Fatal(err)
	} else if _, err := l.Dial(context.Background(), "h:5432", session.LoginRequest{}); err == nil {
		t.Error("a URL without a user makes a login")
	}
}

func TestNewLoginNamesPGSERVICE(t *testing.T) {
	t.Setenv("PGSERVICE", "nowhere")
	_, err := NewLogin(parseBackend(t, "postgres://svc:pw@h/app"), &Dialer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "PGSERVICE") {
		t.Fatalf("err = %v", err)
	}
}

// TestLoginDialSendsOnlyTheSessionParameters runs Dial against a fake
// PostgreSQL with the libpq environment set: the startup message carries the
// URL's user and database and the session's parameters, the password
// message the URL's password, and no read-write check query follows.
func TestLoginDialSendsOnlyTheSessionParameters(t *testing.T) {
	libpqEnvironment(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan error, 1)
	go fakeLoginServer(ln, seen)

	d, err := NewDialer("disable", "", 2*time.Second, net.KeepAliveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLogin(parseBackend(t, "postgres://svc:s3cret@db.internal/app"), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	est, err := l.Dial(ctx, ln.Addr().String(), session.LoginRequest{Database: "reports", Params: []wire.Param{{Name: "application_name", Value: "jwt:alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer est.Conn.Close()
	if err := <-seen; err != nil {
		t.Fatal(err)
	}
	if est.PID != 4242 || est.TxStatus != 'I' || est.Encrypted {
		t.Errorf("established: %+v", est)
	}
}

// fakeLoginServer accepts one login and reports what was wrong with it.
func fakeLoginServer(ln net.Listener, seen chan<- error) {
	c, err := ln.Accept()
	if err != nil {
		seen <- err
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	be := pgproto3.NewBackend(c, c)
	msg, err := be.ReceiveStartupMessage()
	if err != nil {
		seen <- err
		return
	}
	sm, ok := msg.(*pgproto3.StartupMessage)
	if !ok {
		seen <- errors.New("no startup message")
		return
	}
	want := map[string]string{"user": "svc", "database": "reports", "application_name": "jwt:alice"}
	if len(sm.Parameters) != len(want) {
		seen <- errors.New("startup parameters: " + strings.Join(mapPairs(sm.Parameters), ", "))
		return
	}
	for k, v := range want {
		if sm.Parameters[k] != v {
			seen <- errors.New("startup parameters: " + strings.Join(mapPairs(sm.Parameters), ", "))
			return
		}
	}
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		seen <- err
		return
	}
	be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
	pm, err := be.Receive()
	if err != nil {
		seen <- err
		return
	}
	if p, ok := pm.(*pgproto3.PasswordMessage); !ok || p.Password != "s3cret" {
		seen <- errors.New("the password message is not PG_BACKEND_URL's password")
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{1, 2, 3, 4}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := be.Flush(); err != nil {
		seen <- err
		return
	}
	// A target_session_attrs check would send a query now; a hijacked
	// connection sends nothing until the session speaks.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [1]byte
	if n, _ := c.Read(b[:]); n > 0 {
		seen <- errors.New("the login sent a message after ReadyForQuery")
		return
	}
	seen <- nil
}

func mapPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// TestPoolConfigIgnoresLibpqEnvironment: the analysis's own pools log in as
// NewLogin does — the URL's account and login parameters, the dialer's
// timeout, nothing from libpq's environment — with their application_name.
func TestPoolConfigIgnoresLibpqEnvironment(t *testing.T) {
	libpqEnvironment(t)
	d := &Dialer{Timeout: 7 * time.Second}
	pc, err := PoolConfig(parseBackend(t, "postgres://svc:s3cret@db.internal:6432/app?channel_binding=require"), d,
		"10.0.0.5:5433", "shop", "pgproxy-analysis", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := pc.ConnConfig.Config
	if c.Host != "10.0.0.5" || c.Port != 5433 || c.Database != "shop" || c.User != "svc" || c.Password != "s3cret" {
		t.Errorf("pool login: %s@%s:%d/%s password %q", c.User, c.Host, c.Port, c.Database, c.Password)
	}
	if len(c.RuntimeParams) != 1 || c.RuntimeParams["application_name"] != "pgproxy-analysis" {
		t.Errorf("runtime params %v, want only application_name", c.RuntimeParams)
	}
	if c.ValidateConnect != nil || len(c.Fallbacks) != 0 || c.TLSConfig != nil || c.ChannelBinding != "require" ||
		c.RequireAuth != "" || c.MaxProtocolVersion != "3.0" || c.ConnectTimeout != 7*time.Second || c.DialFunc == nil {
		t.Errorf("the environment reached the pool: validate %v, fallbacks %d, TLS %v, channel_binding %q, "+
			"require_auth %q, max protocol %q, connect timeout %s, dial func %v", c.ValidateConnect != nil,
			len(c.Fallbacks), c.TLSConfig != nil, c.ChannelBinding, c.RequireAuth, c.MaxProtocolVersion,
			c.ConnectTimeout, c.DialFunc != nil)
	}
	if _, err := PoolConfig(parseBackend(t, "postgres://svc@h/app"), d, "h", "app", "x", nil); err == nil {
		t.Error("an address without a port was accepted")
	}
}

// signer is a Tokens that signs "token-for-<user>@<endpoint>".
type signer struct{}

func (s *signer) Token(_ context.Context, endpoint, user string) (string, string, error) {
	if user == "broken" {
		return "", "", errors.New("no credentials in the chain")
	}
	return user, "token-for-" + user + "@" + endpoint, nil
}

func (s *signer) Reason(error) string { return "the short reason" }

func (s *signer) Refused(string, string, error) string { return "hint" }

func TestIAMLoginsTakeTheirPasswordFromTokens(t *testing.T) {
	b := parseBackend(t, "postgres://db.internal/app?sslmode=verify-full")
	b.User, b.IAM = "iam_user", true
	if _, err := NewLogin(b, &Dialer{}, nil); err == nil {
		t.Error("an IAM login without a token source was made")
	}
	if _, err := PoolConfig(b, &Dialer{}, "db.internal:5432", "app", "x", nil); err == nil {
		t.Error("an IAM pool without a token source was made")
	}
	pc, err := PoolConfig(b, &Dialer{}, "10.1.2.3:5432", "app", "pgproxy-analysis", &signer{})
	if err != nil {
		t.Fatal(err)
	}
	if pc.ConnConfig.Password != "" || pc.BeforeConnect == nil {
		t.Fatalf("pool: password %q, BeforeConnect set %v", pc.ConnConfig.Password, pc.BeforeConnect != nil)
	}
	cc := pc.ConnConfig.Copy()
	if err := pc.BeforeConnect(context.Background(), cc); err != nil || cc.Password != "token-for-iam_user@10.1.2.3:5432" {
		t.Errorf("BeforeConnect: password %q, %v", cc.Password, err)
	}
	// A URL that is not marked IAM ignores the token source.
	plain := parseBackend(t, "postgres://svc:pw@db.internal/app")
	pc, err = PoolConfig(plain, &Dialer{}, "db.internal:5432", "app", "x", &signer{})
	if err != nil || pc.BeforeConnect != nil || pc.ConnConfig.Password != "pw" {
		t.Errorf("plain pool: BeforeConnect %v, password %q, %v", pc.BeforeConnect != nil, pc.ConnConfig.Password, err)
	}
	// A token that cannot be signed is 08006 with the reason, before any dial.
	b.User = "broken"
	l, err := NewLogin(b, &Dialer{Timeout: time.Second}, &signer{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Dial(context.Background(), "127.0.0.1:1", session.LoginRequest{Database: "app"})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != "08006" || !strings.Contains(we.Message, "the short reason") ||
		strings.Contains(we.Message, "no credentials in the chain") || we.Hint == "" {
		t.Errorf("unsignable login: %v (the client gets Reason, not the error)", err)
	}
}

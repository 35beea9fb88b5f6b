package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/session"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Login opens backend connections as the service account of PG_BACKEND_URL,
// answering the server's challenge itself (cleartext, MD5, SCRAM-SHA-256 and
// SCRAM-SHA-256-PLUS over TLS) with pgconn, then hands the raw connection to
// the session.
type Login struct {
	base   *pgconn.Config
	dialer *Dialer
	noUser bool
	tokens Tokens // IAM logins: the service account's password
}

// Tokens make the credentials of IAM logins (config.BackendURL.IAM): an
// RDS or Aurora IAM token for each new connection, or Redshift's temporary
// user and password.
type Tokens interface {
	// Token returns the user name and password of a login of user at
	// endpoint (host:port). The user name is user for RDS; Redshift names
	// its own (IAM:user, IAMR:role).
	Token(ctx context.Context, endpoint, user string) (login, password string, err error)
	// Reason is what a client is told of err, an error of Token (the full
	// error is for the log only).
	Reason(err error) string
	// Refused is told that the server at endpoint refused a token of user
	// with err (28000 or 28P01): it logs and counts the refusal, and
	// returns the hint the client gets.
	Refused(endpoint, user string, err error) string
}

// loginParams are the PG_BACKEND_URL parameters the login honours, with
// pgconn's meaning; other parameters play no part in it (the session's
// startup parameters are the runtime parameters, the Dialer does TLS).
var loginParams = []string{"channel_binding", "require_auth", "target_session_attrs"}

// neutralLogin is the connection string NewLogin gives pgconn.ParseConfig.
// pgconn merges libpq's environment variables (PGPASSWORD, PGOPTIONS,
// PGSSLMODE, PGTARGETSESSIONATTRS, …) and ~/.pgpass under a connection
// string, so this one names every setting they could supply, with a value
// that does nothing; the real ones are set on the Config afterwards.
// (PGSERVICE cannot be overridden: a service pgconn cannot find makes
// NewLogin fail.)
const neutralLogin = "host=127.0.0.1 port=5432 dbname=postgres user=pgproxy password='' passfile='' " +
	"connect_timeout=0 sslmode=disable sslrootcert='' sslcert='' sslkey='' sslcertmode=disable " +
	"sslpassword='' sslsni=0 sslnegotiation=postgres servicefile='' target_session_attrs=any " +
	"min_protocol_version=3.0 max_protocol_version=3.0 channel_binding=prefer require_auth='' " +
	"krbsrvname='' krbspn=''"

// NewLogin prepares logins with the user, password and database of b (the
// parsed PG_BACKEND_URL) and its loginParams. Nothing comes from the
// libpq environment variables or files of the proxy's own process.
//
// A URL without a user makes a login that only logs in with the
// credentials of a request (a client's own). A URL marked IAM logs the
// service account in with a password from tokens, made for each login.
func NewLogin(b config.BackendURL, d *Dialer, tokens Tokens) (*Login, error) {
	if b.IAM && tokens == nil {
		return nil, errors.New("PG_IAM_AUTH: no token source")
	}
	port, err := strconv.ParseUint(b.Port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("PG_BACKEND_URL: bad port %q", b.Port)
	}
	// pgconn.ConnectConfig accepts only a Config made by ParseConfig.
	cfg, err := pgconn.ParseConfig(loginConnString(b))
	if err != nil {
		return nil, loginConfigError(err)
	}
	cfg.Host, cfg.Port, cfg.Database = b.Host, uint16(port), b.Database
	cfg.User, cfg.Password = b.User, b.Password
	if cfg.User == "" {
		cfg.User = "pgproxy-no-service-account"
	}
	neutralise(cfg)
	l := &Login{base: cfg, dialer: d, noUser: b.User == ""}
	if b.IAM {
		l.tokens = tokens
	}
	return l, nil
}

// splitAddr reads a host:port backend address.
func splitAddr(addr string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("backend address %q: bad port", addr)
	}
	return host, uint16(p), nil
}

// loginConnString is neutralLogin with b's loginParams.
func loginConnString(b config.BackendURL) string {
	conn := neutralLogin
	for _, k := range loginParams {
		if v, ok := b.Params[k]; ok {
			conn += " " + k + "=" + quoteConnValue(v)
		}
	}
	return conn
}

// loginConfigError explains a connection string pgconn refused.
func loginConfigError(err error) error {
	if svc := os.Getenv("PGSERVICE"); svc != "" {
		return fmt.Errorf("PG_BACKEND_URL login: %w (PGSERVICE=%q is set in pgproxy's environment; unset it)", err, svc)
	}
	return fmt.Errorf("PG_BACKEND_URL: %w", err)
}

// neutralise clears what a service file could still have added to a parsed
// login, and what the dialer sets itself.
func neutralise(cfg *pgconn.Config) {
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.RuntimeParams = map[string]string{}
	cfg.KerberosSrvName, cfg.KerberosSpn, cfg.SSLNegotiation = "", "", ""
}

// PoolConfig is the configuration of a pool of the proxy's own connections
// (the analysis's) to database at addr (host:port), logged in as b's user
// and password with b's loginParams through d (its sslmode, CA, timeout,
// keepalives and socket marks), with application_name set to app. As with
// NewLogin, nothing comes from the libpq environment variables or files of
// the proxy's process, and a URL marked IAM takes each connection's
// password from tokens.
func PoolConfig(b config.BackendURL, d *Dialer, addr, database, app string, tokens Tokens) (*pgxpool.Config, error) {
	if b.IAM && tokens == nil {
		return nil, errors.New("PG_IAM_AUTH: no token source")
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(loginConnString(b))
	if err != nil {
		return nil, loginConfigError(err)
	}
	cc := &pcfg.ConnConfig.Config
	cc.Host, cc.Port, cc.Database = host, port, database
	cc.User, cc.Password = b.User, b.Password
	neutralise(cc)
	cc.RuntimeParams["application_name"] = app
	cc.ConnectTimeout = d.Timeout
	cc.DialFunc = func(ctx context.Context, _, a string) (net.Conn, error) {
		c, _, err := d.Dial(ctx, a)
		return c, err
	}
	if b.IAM {
		pcfg.BeforeConnect = TokenLogin(tokens, addr)
	}
	return pcfg, nil
}

// TokenLogin is a pgx BeforeConnect (pools, the reporter) that sets the
// user and password of each connection to endpoint (host:port) from
// tokens.
func TokenLogin(tokens Tokens, endpoint string) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cc *pgx.ConnConfig) error {
		u, pw, err := tokens.Token(ctx, endpoint, cc.User)
		cc.User, cc.Password = u, pw
		return err
	}
}

// serverRefusal turns an error the server sent into a *wire.Error (FATAL,
// its SQLSTATE and message); other errors are returned as they are.
func serverRefusal(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	return &wire.Error{Severity: wire.SeverityFatal, Code: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint}
}

// quoteConnValue quotes a value for a keyword/value connection string.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Dial logs in at addr (host:port) as the request asks: database, startup
// parameters, the configured account or the request's credentials, then the
// replay statements. A refusal by the server is a FATAL *wire.Error with
// its SQLSTATE.
func (l *Login) Dial(ctx context.Context, addr string, req session.LoginRequest) (*session.Established, error) {
	database, params := req.Database, req.Params
	cfg := l.base.Copy()
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.Database = host, port, database
	iam := false
	if c := req.Credentials; c != nil {
		cfg.User, cfg.Password = c.User, c.Password
	} else if l.noUser {
		return nil, errors.New("no service account: the backend URL has no user")
	} else if l.tokens != nil {
		u, pw, err := l.tokens.Token(ctx, addr, cfg.User)
		if err != nil {
			return nil, &wire.Error{Severity: wire.SeverityFatal, Code: "08006",
				Message: "the proxy cannot get the credentials of its IAM login: " + l.tokens.Reason(err),
				Hint:    "check the proxy's AWS credentials (and PG_IAM_ROLE_ARN's trust policy and STS reachability); the proxy retries at the next connection"}
		}
		cfg.User, cfg.Password, iam = u, pw, true
	}
	cfg.Fallbacks = nil
	// The proxy's dialer negotiates TLS (sslmode, CA, keepalives, marks);
	// pgconn sees a ready connection and does only the startup and login.
	cfg.TLSConfig = nil
	encrypted := false
	cfg.DialFunc = func(ctx context.Context, _, a string) (net.Conn, error) {
		c, enc, err := l.dialer.Dial(ctx, a)
		encrypted = enc
		return c, err
	}
	cfg.RuntimeParams = map[string]string{}
	for _, p := range params {
		cfg.RuntimeParams[p.Name] = p.Value
	}
	cfg.ConnectTimeout = l.dialer.Timeout
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		err = serverRefusal(err)
		if we, ok := err.(*wire.Error); ok && iam && (we.Code == "28000" || we.Code == "28P01") {
			// The client's own credentials were fine: the proxy's were
			// not, which 28P01 (a wrong password) would not say.
			we.Hint = l.tokens.Refused(addr, cfg.User, err)
			we.Code, we.Message = "28000", "the database refused the proxy's IAM login: "+we.Message
		}
		return nil, err
	}
	for _, sql := range req.Replay {
		if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("replaying the session's settings: %w", serverRefusal(err))
		}
	}
	hj, err := conn.Hijack()
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return &session.Established{Conn: hj.Conn, Encrypted: encrypted, PID: hj.PID, Secret: hj.SecretKey,
		Params: hj.ParameterStatuses, TxStatus: hj.TxStatus}, nil
}

package backend

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

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
}

// NewLogin parses the backend URL once; its user and password are the
// service account's.
func NewLogin(backendURL string, d *Dialer) (*Login, error) {
	cfg, err := pgconn.ParseConfig(backendURL)
	if err != nil {
		return nil, fmt.Errorf("PG_BACKEND_URL: %w", err)
	}
	if cfg.User == "" {
		return nil, fmt.Errorf("PG_BACKEND_URL has no user: token authentication logs in as its service account")
	}
	return &Login{base: cfg, dialer: d}, nil
}

// Dial logs in at addr (host:port) to database with the startup parameters.
func (l *Login) Dial(ctx context.Context, addr, database string, params []wire.Param) (*session.Established, error) {
	cfg := l.base.Copy()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("backend address %q: bad port", addr)
	}
	cfg.Host, cfg.Port, cfg.Database = host, uint16(p), database
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
		return nil, err
	}
	hj, err := conn.Hijack()
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return &session.Established{Conn: hj.Conn, Encrypted: encrypted, PID: hj.PID, Secret: hj.SecretKey,
		Params: hj.ParameterStatuses, TxStatus: hj.TxStatus}, nil
}

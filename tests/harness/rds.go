package harness

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// RDS is a stand-in for an RDS or Aurora PostgreSQL endpoint with IAM
// authentication: it takes TLS only, asks for a cleartext password, checks
// it as an RDS IAM token (SigV4 presigned rds-db connect for its own
// host:port, the user of the startup message, the account's region, a
// known and unexpired key) and then passes the connection to a real
// PostgreSQL, which must trust that user from the loopback. Anything else
// is refused as RDS refuses it: FATAL 28P01 PAM authentication failed.
type RDS struct {
	// Addr is host:port, the endpoint tokens must be signed for.
	Addr string

	acct     *AWSAccount
	redshift bool // passwords are Redshift temporary credentials, not RDS tokens
	upstream string
	tls      *tls.Config

	mu     sync.Mutex
	logins []RDSLogin
}

// RDSLogin is a login the stand-in judged.
type RDSLogin struct {
	User string
	// Key is the access key that signed the token ("" when unreadable).
	Key string
	// Err is why it was refused (nil: passed on).
	Err error
	At  time.Time
}

// StartRDS serves the stand-in on a free loopback port with certs' server
// certificate in front of upstream (host:port of a PostgreSQL). It stops in
// cleanup.
func StartRDS(t testing.TB, acct *AWSAccount, certs *Certs, upstream string) *RDS {
	t.Helper()
	return startPGFront(t, acct, certs, upstream, false)
}

// StartRedshift is the stand-in for a Redshift endpoint (cluster or
// serverless workgroup): as StartRDS, but the password must be one of the
// temporary credentials the account's Redshift API handed out for that
// user (GetClusterCredentials, GetCredentials), and not expired or revoked.
func StartRedshift(t testing.TB, acct *AWSAccount, certs *Certs, upstream string) *RDS {
	t.Helper()
	return startPGFront(t, acct, certs, upstream, true)
}

func startPGFront(t testing.TB, acct *AWSAccount, certs *Certs, upstream string, redshift bool) *RDS {
	t.Helper()
	f := newFront(t, certs)
	r := &RDS{Addr: f.addr, tls: f.tls, acct: acct, upstream: upstream, redshift: redshift}
	f.serve(t, func(c net.Conn, _ int) { r.handle(c) })
	return r
}

// Logins returns the logins judged so far.
func (r *RDS) Logins() []RDSLogin {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RDSLogin(nil), r.logins...)
}

func (r *RDS) record(l RDSLogin) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logins = append(r.logins, l)
}

func (r *RDS) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	be := pgproto3.NewBackend(c, c)
	msg, err := be.ReceiveStartupMessage()
	if err != nil {
		return
	}
	var conn net.Conn = c
	switch m := msg.(type) {
	case *pgproto3.CancelRequest:
		r.forwardCancel(m)
		return
	case *pgproto3.SSLRequest:
		if _, err := c.Write([]byte{'S'}); err != nil {
			return
		}
		tc := tls.Server(c, r.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn, be = tc, pgproto3.NewBackend(tc, tc)
		if msg, err = be.ReceiveStartupMessage(); err != nil {
			return
		}
	}
	sm, ok := msg.(*pgproto3.StartupMessage)
	if !ok {
		return
	}
	user := sm.Parameters["user"]
	fatal := func(code, text string) {
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: text})
		_ = be.Flush()
	}
	if conn == c {
		r.record(RDSLogin{User: user, Err: errors.New("no TLS"), At: time.Now()})
		fatal("28000", fmt.Sprintf("pg_hba.conf rejects connection for host %q, user %q, database %q, no encryption",
			"127.0.0.1", user, sm.Parameters["database"]))
		return
	}
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return
	}
	be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
	pm, err := be.Receive()
	if err != nil {
		return
	}
	pw, ok := pm.(*pgproto3.PasswordMessage)
	if !ok {
		return
	}
	login := RDSLogin{User: user, At: time.Now()}
	if r.redshift {
		login.Key, err = r.acct.checkDBPassword(user, pw.Password)
	} else {
		login.Key, err = r.checkToken(user, pw.Password)
	}
	login.Err = err
	r.record(login)
	if err != nil {
		fatal("28P01", fmt.Sprintf("PAM authentication failed for user %q", user))
		return
	}
	up, err := net.DialTimeout("tcp", r.upstream, 5*time.Second)
	if err != nil {
		fatal("08006", "the RDS stand-in cannot reach its PostgreSQL: "+err.Error())
		return
	}
	defer up.Close()
	startup, err := sm.Encode(nil)
	if err != nil {
		return
	}
	if _, err := up.Write(startup); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, conn); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(conn, up); conn.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// checkToken checks password as an RDS IAM token of user for this
// endpoint and returns the key that signed it.
func (r *RDS) checkToken(user, password string) (string, error) {
	p, err := VerifyPresigned(password, "rds-db", r.acct.Region, time.Now(), r.acct.Lookup)
	switch {
	case err != nil:
	case p.Query.Get("Action") != "connect":
		err = fmt.Errorf("action %q", p.Query.Get("Action"))
	case p.Query.Get("DBUser") != user:
		err = fmt.Errorf("token for DBUser %q, login as %q", p.Query.Get("DBUser"), user)
	case p.Host != r.Addr:
		err = fmt.Errorf("token for host %q, this endpoint is %q", p.Host, r.Addr)
	}
	return p.Key.ID, err
}

// forwardCancel passes a CancelRequest on to the PostgreSQL (the keys are
// its own: the stand-in relays its BackendKeyData).
func (r *RDS) forwardCancel(m *pgproto3.CancelRequest) {
	up, err := net.DialTimeout("tcp", r.upstream, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	b, err := m.Encode(nil)
	if err == nil {
		_, _ = up.Write(b)
		_, _ = io.Copy(io.Discard, up)
	}
}

package harness

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func connect(t *testing.T, dsn string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

func mustQueryInt(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// checkUsers verifies the authentication method of each role, that right passwords work, wrong
// ones fail with 28P01, and that every role can create tables in testdb.
func checkUsers(t *testing.T, c *Cluster) {
	t.Helper()
	users := []struct {
		user, pass, method string
	}{
		{ScramUser, ScramPass, "scram"},
		{MD5User, MD5Pass, "md5"},
		{ClearUser, ClearPass, "password"},
		{TrustUser, "", "trust"},
	}
	for _, u := range users {
		var tlsCfg = (*tlsConfigT)(nil)
		if c.Certs() != nil {
			tlsCfg = mustClientTLS(t, c.Certs(), c.Host())
		}
		req, err := ProbeAuth(context.Background(), c.Addr(), u.user, TestDB, tlsCfg)
		if err != nil || req.Method != u.method {
			t.Errorf("%s: auth request %+v, %v; want %s", u.user, req, err, u.method)
		}
		if u.method == "scram" && !slices.Contains(req.Mechanisms, "SCRAM-SHA-256") {
			t.Errorf("%s: mechanisms %v", u.user, req.Mechanisms)
		}
		conn, err := connect(t, c.DSN(u.user, u.pass, TestDB))
		if err != nil {
			t.Fatalf("%s: connect: %v", u.user, err)
		}
		table := "t_" + u.user
		if _, err := conn.Exec(context.Background(), "CREATE TABLE "+table+" (id int); INSERT INTO "+table+" VALUES (1)"); err != nil {
			t.Errorf("%s: create table: %v", u.user, err)
		}
		if u.pass != "" {
			_, err := connect(t, c.DSN(u.user, "wrong", TestDB))
			if sqlState(err) != "28P01" {
				t.Errorf("%s: wrong password gave %v, want SQLSTATE 28P01", u.user, err)
			}
		}
	}
	// Tables made by one role are readable by the others.
	conn, err := connect(t, c.DSN(TrustUser, "", TestDB))
	if err != nil {
		t.Fatal(err)
	}
	if n := mustQueryInt(t, conn, "SELECT count(*) FROM t_scram_user"); n != 1 {
		t.Errorf("count = %d", n)
	}
	// The superuser has no TCP access.
	if _, err := connect(t, c.DSN(Superuser, "", TestDB)); sqlState(err) != "28000" {
		t.Errorf("superuser over TCP: %v, want SQLSTATE 28000", err)
	}
}

func TestPostgresUsersAndAuthMethods(t *testing.T) {
	t.Parallel()
	c := StartPostgres(t, PGOptions{})
	checkUsers(t, c)
	// md5_user's password is stored as MD5, the others as SCRAM.
	su, err := connect(t, c.SuperuserDSN(TestDB))
	if err != nil {
		t.Fatal(err)
	}
	var md5Hash, scramHash string
	err = su.QueryRow(context.Background(),
		"SELECT (SELECT rolpassword FROM pg_authid WHERE rolname=$1), (SELECT rolpassword FROM pg_authid WHERE rolname=$2)",
		MD5User, ScramUser).Scan(&md5Hash, &scramHash)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(md5Hash, "md5") || !strings.HasPrefix(scramHash, "SCRAM-SHA-256$") {
		t.Errorf("stored passwords: md5_user %q, scram_user %q", md5Hash, scramHash)
	}
	if err := c.SuperuserExec("CREATE TABLE su_t (id int); INSERT INTO su_t VALUES ($1)", 5); err == nil {
		t.Error("several statements with arguments should fail")
	}
	if err := c.SuperuserExec("CREATE TABLE su_t (id int); INSERT INTO su_t VALUES (5)"); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresRestartAndKill(t *testing.T) {
	t.Parallel()
	c := StartPostgres(t, PGOptions{})
	if err := c.SuperuserExec("CREATE TABLE keep (v text); INSERT INTO keep VALUES ('x')"); err != nil {
		t.Fatal(err)
	}
	port := c.Port()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, c.DSN(TrustUser, "", TestDB)); err == nil {
		t.Fatal("connected to a stopped server")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := connect(t, c.DSN(ScramUser, ScramPass, TestDB))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(context.Background()); err == nil {
		t.Error("session survived Kill")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Errorf("port changed: %d -> %d", port, c.Port())
	}
	conn, err = connect(t, c.DSN(ScramUser, ScramPass, TestDB))
	if err != nil {
		t.Fatal(err)
	}
	if n := mustQueryInt(t, conn, "SELECT count(*) FROM keep"); n != 1 {
		t.Errorf("rows after restart = %d", n)
	}
}

func TestPostgresTLS(t *testing.T) {
	t.Parallel()
	c := StartPostgres(t, PGOptions{TLS: true})
	if c.Certs() == nil || !strings.Contains(c.DSN(ScramUser, ScramPass, TestDB), "sslmode=verify-full") {
		t.Fatalf("TLS cluster DSN %s", c.DSN(ScramUser, ScramPass, TestDB))
	}
	conn, err := connect(t, c.DSN(ScramUser, ScramPass, TestDB))
	if err != nil {
		t.Fatal(err)
	}
	var ssl bool
	if err := conn.QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Errorf("ssl = %v, %v", ssl, err)
	}
	// Plain connections are still allowed with host lines.
	plain := strings.Replace(c.DSN(TrustUser, "", TestDB), "sslmode=verify-full", "sslmode=disable", 1)
	if _, err := connect(t, plain); err != nil {
		t.Errorf("plain connection: %v", err)
	}
}

func TestPostgresTLSOnly(t *testing.T) {
	t.Parallel()
	c := StartPostgres(t, PGOptions{TLSOnly: true})
	checkUsers(t, c)
	plain := strings.Replace(c.DSN(TrustUser, "", TestDB), "sslmode=verify-full", "sslmode=disable", 1)
	if _, err := connect(t, plain); sqlState(err) != "28000" {
		t.Errorf("plain connection to a hostssl-only server: %v, want SQLSTATE 28000", err)
	}
}

func TestPostgresListenAddrsAndConf(t *testing.T) {
	t.Parallel()
	c := StartPostgres(t, PGOptions{ListenAddr: "127.0.0.2", Conf: []string{"work_mem = '7MB'"}})
	conn, err := connect(t, c.DSN(MD5User, MD5Pass, TestDB))
	if err != nil {
		t.Fatal(err)
	}
	var wm string
	if err := conn.QueryRow(context.Background(), "SHOW work_mem").Scan(&wm); err != nil || wm != "7MB" {
		t.Errorf("work_mem = %q, %v", wm, err)
	}
	if c.Addr() != net.JoinHostPort("127.0.0.2", itoa(c.Port())) {
		t.Errorf("Addr = %s", c.Addr())
	}
	t.Run("ipv6", func(t *testing.T) {
		if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
			Unavailable(t, "no IPv6 loopback: %v", err)
		} else {
			_ = l.Close()
		}
		c6 := StartPostgres(t, PGOptions{ListenAddr: "::1"})
		if !strings.HasPrefix(c6.Addr(), "[::1]:") {
			t.Errorf("Addr = %s", c6.Addr())
		}
		checkUsers(t, c6)
	})
}

func TestSharedPostgres(t *testing.T) {
	a := SharedPostgres(t)
	b := SharedPostgres(t)
	if a != b {
		t.Fatal("two shared clusters")
	}
	conn, err := connect(t, a.DSN(ClearUser, ClearPass, TestDB))
	if err != nil {
		t.Fatal(err)
	}
	if n := mustQueryInt(t, conn, "SELECT 1"); n != 1 {
		t.Fatal(n)
	}
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// passwords of the roles every harness cluster provisions.
var passwords = map[string]string{
	harness.ScramUser: harness.ScramPass,
	harness.MD5User:   harness.MD5Pass,
	harness.ClearUser: harness.ClearPass,
	harness.TrustUser: "",
}

// world is the state of one scenario: the servers it started, the proxy, its client sessions
// and the outcome of the last action that steps after it check.
type world struct {
	t   *scenarioT
	ctx context.Context

	pg        *harness.Cluster
	dedicated bool
	proxy     *harness.Proxy
	env       map[string]string
	// clientCerts are the proxy's TLS files (CAFile is what clients trust), when TLS is on.
	clientCerts *harness.Certs

	sessions map[string]*session
	// backendPIDs remembers each session's backend process, also after it disconnected.
	backendPIDs map[string]int
	// lastErr is the outcome of the last connection attempt or action of "the session".
	lastErr error

	raw     net.Conn // a hand-driven client connection (raw protocol steps)
	scratch map[string]any
}

// session is a pgx client connection through the proxy.
type session struct {
	name       string
	conn       *pgx.Conn
	backendPID int

	mu      sync.Mutex
	notices []*pgconn.Notice

	// running is the outcome of a query started in the background.
	running chan error
	// lastErr is the outcome of the last statement run by a step.
	lastErr error
}

func (s *session) addNotice(n *pgconn.Notice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notices = append(s.notices, n)
}

func (s *session) noticeMessages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range s.notices {
		out = append(out, n.Message)
	}
	return out
}

// defaultSession names "the session" of steps that do not name one.
const defaultSession = "default"

func initializeScenario(sc *godog.ScenarioContext) {
	w := &world{}
	sc.Before(func(ctx context.Context, s *godog.Scenario) (context.Context, error) {
		t, err := newScenarioT(ctx)
		if err != nil {
			return ctx, err
		}
		*w = world{t: t, ctx: ctx, env: map[string]string{}, sessions: map[string]*session{}, backendPIDs: map[string]int{},
			scratch: map[string]any{}}
		return ctx, nil
	})
	registerServerSteps(sc, w)
	registerSessionSteps(sc, w)
	registerMetricSteps(sc, w)
	registerRawSteps(sc, w)
	registerDataSteps(sc, w)
	registerClientSteps(sc, w)
}

// closeAll closes the scenario's client connections before the harness stops the servers.
func (w *world) closeAll() {
	for name, s := range w.sessions {
		if s.running != nil {
			// A query still runs on the connection: pgx connections are not safe for
			// concurrent use, so end the socket under it.
			_ = s.conn.PgConn().Conn().Close()
			<-s.running
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.conn.Close(ctx)
		cancel()
		delete(w.sessions, name)
	}
	if w.raw != nil {
		_ = w.raw.Close()
	}
}

// cluster returns the scenario's PostgreSQL server, the shared one unless a step asked for a
// dedicated one.
func (w *world) cluster() *harness.Cluster {
	if w.pg == nil {
		w.pg = harness.SharedPostgres(w.t)
	}
	return w.pg
}

// startProxy starts pgproxy in front of the scenario's server with w.env plus extra.
func (w *world) startProxy(extra map[string]string) {
	pg := w.cluster()
	env := map[string]string{
		"PG_BACKEND_URL": pg.BackendURL(harness.TestDB),
		"LOG_FORMAT":     "text",
		"LOG_LEVEL":      "debug",
	}
	if c := pg.Certs(); c != nil {
		env["PG_BACKEND_CA_PATH"] = c.CAFile
	}
	maps.Copy(env, w.env)
	maps.Copy(env, extra)
	w.proxy = harness.StartProxy(w.t, env)
	// Registered after the proxy's own cleanup, so it runs before it: the proxy then stops
	// without sessions to drain.
	w.t.Cleanup(w.closeAll)
}

// enableClientTLS writes certificates for the proxy and turns TLS on for its clients.
func (w *world) enableClientTLS() {
	certs, err := harness.GenerateCerts(filepath.Join(w.t.TempDir(), "proxy-tls"))
	if err != nil {
		w.t.Fatalf("generate proxy certificates: %v", err)
	}
	w.clientCerts = certs
	w.env["TLS_ENABLED"] = "true"
	w.env["TLS_CERT_PATH"] = certs.CertFile
	w.env["TLS_KEY_PATH"] = certs.KeyFile
}

// dsn returns the connection URL for user through the proxy; transport is "", "plaintext",
// "TLS" or "direct TLS"; extra are more URL query parameters.
func (w *world) dsn(user, pass, transport, extra string) string {
	if w.proxy == nil {
		w.t.Fatalf("no proxy is running in this scenario")
	}
	var q []string
	switch transport {
	case "", "plaintext":
		if !strings.Contains(extra, "sslmode=") {
			q = append(q, "sslmode=disable")
		}
	case "TLS", "direct TLS":
		if w.clientCerts == nil {
			w.t.Fatalf("the proxy has no TLS certificates in this scenario")
		}
		q = append(q, "sslmode=verify-full", "sslrootcert="+url.QueryEscape(w.clientCerts.CAFile))
		if transport == "direct TLS" {
			q = append(q, "sslnegotiation=direct")
		}
	default:
		w.t.Fatalf("unknown transport %q", transport)
	}
	if extra != "" {
		q = append(q, extra)
	}
	return w.proxy.DSN(user, pass, harness.TestDB, strings.Join(q, "&"))
}

// connect opens a pgx connection with dsn and registers it as session name on success.
func (w *world) connect(name, dsn string) (*session, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		w.t.Fatalf("parse DSN %q: %v", dsn, err)
	}
	s := &session{name: name}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { s.addNotice(n) }
	cfg.ConnectTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	if old := w.sessions[name]; old != nil {
		_ = old.conn.Close(ctx)
	}
	w.sessions[name] = s
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&s.backendPID); err != nil {
		return s, fmt.Errorf("pg_backend_pid: %w", err)
	}
	w.backendPIDs[name] = s.backendPID
	return s, nil
}

// session returns the named session ("" is the default one), failing the step when there is none.
func (w *world) session(name string) *session {
	if name == "" {
		name = defaultSession
	}
	s := w.sessions[name]
	if s == nil {
		w.t.Fatalf("session %q is not connected", name)
	}
	return s
}

// stepCtx bounds one action of a step.
func (w *world) stepCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(w.ctx, d)
}

// pgError returns the server error in err, or nil.
func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// sqlstateOf describes err for messages: its SQLSTATE when it has one.
func sqlstateOf(err error) string {
	if pe := pgError(err); pe != nil {
		return pe.Code
	}
	return "none"
}

// exec runs sql with the simple protocol and returns the text of the first column of the first
// row of the last result ("" when it has no rows).
func exec(ctx context.Context, conn *pgx.Conn, sql string) (string, error) {
	results, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	if err != nil {
		return "", err
	}
	if len(results) == 0 {
		return "", nil
	}
	last := results[len(results)-1]
	if last.Err != nil {
		return "", last.Err
	}
	if len(last.Rows) == 0 || len(last.Rows[0]) == 0 {
		return "", nil
	}
	return string(last.Rows[0][0]), nil
}

// runInBackground runs sql on s and reports the outcome on s.running.
func runInBackground(ctx context.Context, s *session, sql string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, err := exec(ctx, s.conn, sql)
	s.running <- err
}

// superuserValue runs sql as the superuser over the server's unix socket, bypassing the proxy,
// and returns the first value as text.
func (w *world) superuserValue(sql string) (string, error) {
	ctx, cancel := w.stepCtx(time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, w.cluster().SuperuserDSN(harness.TestDB))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	return exec(ctx, conn, sql)
}

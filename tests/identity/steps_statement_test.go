package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func (w *world) registerStatementSteps(sc *godog.ScenarioContext) {
	sc.Step(`^a plpgsql function "(\w+)\(text\)" that calls set_config\('application_name', \$1, false\) inside$`, w.sneakyFunction)
	sc.Step(`^the session runs "([^"]*)"$`, func(sql string) error { return w.run(sql) })
	sc.Step(`^the session runs "(.*)" with the parameter "(.*)"$`, func(sql, arg string) error { return w.run(sql, arg) })
	sc.Step(`^the session runs the text:$`, func(doc *godog.DocString) error { return w.run(doc.Content) })
	sc.Step(`^the session sends the Query "(.*)"$`, w.rawQuery)
	sc.Step(`^the statement succeeds with "(.*)"$`, w.statementSucceeds)
	sc.Step(`^the statement fails with SQLSTATE (\w+) and a message containing "(.*)"$`, w.statementFails)
	sc.Step(`^the session is still usable and application_name is "([^"]*)"$`, w.stillUsable)
	sc.Step(`^the session calls set_config\('application_name', 'x', false\) through a fast-path FunctionCall$`, w.fastPathSetConfig)
	sc.Step(`^the session's transaction status is "(\w)"$`, w.txStatus)
	sc.Step(`^the session sends one pipeline: insert 1, "(.*)", insert 2$`, w.pipeline)
	sc.Step(`^the table identity_pipe has (\d+) rows?$`, w.pipeRows)
	sc.Step(`^the pipeline fails with SQLSTATE (\w+)$`, w.pipelineFails)
	sc.Step(`^pgx connects (\d+) times with the token and the startup parameter "([^"]*)" set to "([^"]*)"$`, w.startupParam)
	sc.Step(`^every one of those sessions has application_name "([^"]*)"$`, w.probesAll)
	sc.Step(`^the session is ended with a FATAL error (\w+) saying "(.*)"$`, w.sessionEnded)
	sc.Step(`^the backend has a stand-in stv_recents view$`, func() error { return w.pg.SuperuserExec(stvRecentsStandIn) })
	sc.Step(`^stv_recents has a statement of user "(\w+)" reading "(.*)"$`, w.recentStatement)
	sc.Step(`^the session runs "(.*)" in the (simple|extended) protocol$`, w.runIn)
	sc.Step(`^the statement fails with SQLSTATE (\w+) at position (\d+)$`, w.failsAt)
}

// stvRecentsStandIn is a view with the columns of Redshift's stv_recents
// (userid, status, starttime, duration, user_name, db_name, query, pid)
// over pg_stat_activity.
const stvRecentsStandIn = `CREATE OR REPLACE VIEW public.stv_recents AS
SELECT usesysid::int AS userid, (CASE state WHEN 'active' THEN 'Running' ELSE 'Done' END)::char(20) AS status,
	query_start::timestamp AS starttime, (extract(epoch FROM now() - query_start) * 1000000)::int AS duration,
	usename::char(50) AS user_name, datname::char(50) AS db_name, left(query, 600)::char(600) AS query, pid
FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend'`

// recentStatement checks, as the superuser, that stv_recents shows a
// statement of user whose text is want.
func (w *world) recentStatement(user, want string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	su, err := superuser(ctx, w.pg, harness.TestDB)
	if err != nil {
		return err
	}
	defer su.Close(context.Background())
	rows, err := su.Query(ctx, "SELECT rtrim(query) FROM stv_recents WHERE rtrim(user_name) = $1", user)
	if err != nil {
		return err
	}
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, t := range texts {
		if t == want {
			return nil
		}
	}
	return fmt.Errorf("stv_recents shows %q for %s, none is %q", texts, user, want)
}

// runIn runs sql in the named protocol (extended: pgx's cached statement).
func (w *world) runIn(sql, protocol string) error {
	if w.conn == nil {
		return fmt.Errorf("no open session (login: %v)", w.connErr)
	}
	mode := pgx.QueryExecModeSimpleProtocol
	if protocol == "extended" {
		mode = pgx.QueryExecModeCacheStatement
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rows, err := w.conn.Query(ctx, sql, mode)
	if err == nil {
		for rows.Next() {
		}
		rows.Close()
		err = rows.Err()
	}
	w.result, w.stmtErr = "", err
	return nil
}

// failsAt checks the last statement's error and its cursor position.
func (w *world) failsAt(code string, position int) error {
	var pgErr *pgconn.PgError
	if !errors.As(w.stmtErr, &pgErr) {
		return fmt.Errorf("statement gave %v, want SQLSTATE %s", w.stmtErr, code)
	}
	if pgErr.Code != code || int(pgErr.Position) != position {
		return fmt.Errorf("error %s at position %d (%s), want %s at position %d", pgErr.Code, pgErr.Position, pgErr.Message, code, position)
	}
	return nil
}

// sneakyFunction creates, as the superuser, a function any role may call that changes
// application_name where no statement check can see it.
func (w *world) sneakyFunction(name string) error {
	return w.pg.SuperuserExec(fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s(v text) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('application_name', v, false); RETURN v; END $$`, name))
}

// run runs sql on the session: the simple protocol without args, the extended protocol with.
func (w *world) run(sql string, args ...any) error {
	if w.conn == nil {
		return fmt.Errorf("no open session (login: %v)", w.connErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	w.result, w.stmtErr = queryRows(ctx, w.conn, sql, args...)
	return nil
}

func (w *world) statementSucceeds(want string) error {
	if w.stmtErr != nil {
		return fmt.Errorf("statement failed: %w", w.stmtErr)
	}
	return w.resultIs(want)
}

func (w *world) statementFails(code, text string) error {
	if w.stmtErr == nil {
		return fmt.Errorf("statement succeeded with %q, want SQLSTATE %s", w.result, code)
	}
	return checkRefusal(w.stmtErr, w.token, code, text)
}

// stillUsable checks that the session answers and that application_name kept its value,
// both as the session sees it and as pg_stat_activity shows it.
func (w *world) stillUsable(appName string) error {
	if err := w.run("SELECT current_setting('application_name')"); err != nil {
		return err
	}
	if w.stmtErr != nil {
		return fmt.Errorf("session no longer usable: %w", w.stmtErr)
	}
	if w.result != appName {
		return fmt.Errorf("application_name is %q, want %q", w.result, appName)
	}
	if got := w.conn.PgConn().ParameterStatus("application_name"); got != appName {
		return fmt.Errorf("the client was told application_name %q, want %q", got, appName)
	}
	return w.auditSession(w.account, appName)
}

// sessionEnded checks that the last statement ended the session with a FATAL error.
func (w *world) sessionEnded(code, text string) error {
	var pe *pgconn.PgError
	if !errors.As(w.stmtErr, &pe) {
		return fmt.Errorf("want a FATAL %s, got %v (result %q)", code, w.stmtErr, w.result)
	}
	if pe.Severity != "FATAL" || pe.Code != code {
		return fmt.Errorf("got %s %s (%s), want FATAL %s", pe.Severity, pe.Code, pe.Message, code)
	}
	if err := checkRefusal(w.stmtErr, w.token, code, text); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.conn.Ping(ctx); err == nil {
		return errors.New("the session still answers after the FATAL error")
	}
	// And no backend process keeps running under the changed name.
	su, err := superuser(ctx, w.pg, harness.TestDB)
	if err != nil {
		return err
	}
	defer su.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := su.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND application_name NOT LIKE 'jwt:%'", w.account).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d backend session(s) of %s still run without a jwt: application_name", n, w.account)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setConfigOID is the OID of pg_catalog.set_config(text, text, boolean).
const setConfigOID = 2078

// fastPathSetConfig calls set_config with a FunctionCall message (the fast-path interface),
// which carries no SQL text for a statement check to read.
func (w *world) fastPathSetConfig() error {
	if w.conn == nil {
		return errors.New("no open session")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc := w.conn.PgConn()
	if d, ok := ctx.Deadline(); ok {
		_ = pc.Conn().SetDeadline(d)
		defer pc.Conn().SetDeadline(time.Time{})
	}
	fe := pc.Frontend()
	fe.Send(&pgproto3.FunctionCall{
		Function:       setConfigOID,
		ArgFormatCodes: []uint16{0},
		Arguments:      [][]byte{[]byte("application_name"), []byte("x"), []byte("false")},
	})
	if err := fe.Flush(); err != nil {
		return err
	}
	w.stmtErr = nil
	for {
		msg, err := fe.Receive()
		if err != nil {
			if w.stmtErr == nil {
				w.stmtErr = err
			}
			pc.Conn().Close()
			return nil
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			w.stmtErr = pgconn.ErrorResponseToPgError(m)
		case *pgproto3.FunctionCallResponse:
			w.result = string(m.Result)
		case *pgproto3.ReadyForQuery:
			return nil
		}
	}
}

func (w *world) txStatus(want string) error {
	if got := string(w.conn.PgConn().TxStatus()); got != want {
		return fmt.Errorf("transaction status %q, want %q", got, want)
	}
	return nil
}

// pipeline sends insert 1, the refused statement and insert 2 as one extended-protocol
// pipeline with a single Sync (pgx batch in exec mode: Parse/Bind/Describe/Execute each, no
// separate prepare round trip); a statement with $1 gets the parameter "x". The session is
// replaced by one in that mode.
func (w *world) pipeline(refused string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg, err := w.pgxConfig(harness.TestDB, "verify-full")
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	_ = w.conn.Close(ctx)
	w.conn = conn
	b := &pgx.Batch{}
	b.Queue("INSERT INTO identity_pipe VALUES (1)")
	if strings.Contains(refused, "$1") {
		b.Queue(refused, "x")
	} else {
		b.Queue(refused)
	}
	b.Queue("INSERT INTO identity_pipe VALUES (2)")
	res := w.conn.SendBatch(ctx, b)
	var first error
	for range 3 {
		if _, err := res.Exec(); err != nil && first == nil {
			first = err
		}
	}
	if err := res.Close(); err != nil && first == nil {
		first = err
	}
	w.stmtErr = first
	return nil
}

// pipeRows counts the rows of identity_pipe as the superuser sees them (committed rows).
func (w *world) pipeRows(want int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	su, err := superuser(ctx, w.pg, harness.TestDB)
	if err != nil {
		return err
	}
	defer su.Close(context.Background())
	var n int
	if err := su.QueryRow(ctx, "SELECT count(*) FROM identity_pipe").Scan(&n); err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("identity_pipe has %d committed rows, want %d", n, want)
	}
	return nil
}

func (w *world) pipelineFails(code string) error {
	return checkRefusal(w.stmtErr, w.token, code, "")
}

// startupParam logs in n times with an extra startup parameter and records, per session, the
// application_name PostgreSQL has (or the login error).
func (w *world) startupParam(n int, name, value string) error {
	w.probes = nil
	for range n {
		cfg, err := w.pgxConfig(harness.TestDB, "verify-full")
		if err != nil {
			return err
		}
		cfg.RuntimeParams[name] = value
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			cancel()
			w.probes = append(w.probes, "login failed: "+err.Error())
			continue
		}
		got, err := queryRows(ctx, conn, "SELECT current_setting('application_name')")
		if err != nil {
			got = "query failed: " + err.Error()
		}
		w.probes = append(w.probes, got+" (client told "+conn.PgConn().ParameterStatus("application_name")+")")
		_ = conn.Close(ctx)
		cancel()
	}
	return nil
}

func (w *world) probesAll(want string) error {
	for i, got := range w.probes {
		if got != want+" (client told "+want+")" {
			return fmt.Errorf("session %d of %d: %s, want %s", i+1, len(w.probes), got, want)
		}
	}
	return nil
}

// rawQuery sends sql as one simple Query through pgconn (pgx itself refuses
// the simple protocol with standard_conforming_strings off); the result is
// the last result set's rows.
func (w *world) rawQuery(sql string) error {
	if w.conn == nil {
		return fmt.Errorf("no open session (login: %v)", w.connErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	results, err := w.conn.PgConn().Exec(ctx, sql).ReadAll()
	w.result, w.stmtErr = "", err
	if err == nil && len(results) > 0 {
		var rows []string
		for _, r := range results[len(results)-1].Rows {
			cols := make([]string, len(r))
			for i, v := range r {
				cols[i] = string(v)
			}
			rows = append(rows, strings.Join(cols, "|"))
		}
		w.result = strings.Join(rows, "\n")
	}
	return nil
}

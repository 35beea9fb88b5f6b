package session_test

// Routing to a second backend (the shunt node) on the same client session:
// a fast and a shunt PostgreSQL that hold different rows in the same table,
// so every answer shows which node gave it.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/session"
	"github.com/pgproxy/pgproxy/userspace/stmt"
)

// routeTable routes every statement that names table to the shunt.
func routeTable(table string) stmt.Policy {
	return stmt.PolicyFunc(func(_ context.Context, st *stmt.Statement) stmt.Decision {
		if st.SQL == "" || !tables(st.Parsed(), table) {
			return stmt.Decision{}
		}
		return stmt.Decision{Action: stmt.Route, Leg: session.LegShunt, Source: "test", Verdict: "inefficient"}
	})
}

// twoNodes starts a shunt cluster and fills where_am_i on both nodes with
// the node's name.
func twoNodes(t *testing.T) *harness.Cluster {
	t.Helper()
	shunt := harness.StartPostgres(t, harness.PGOptions{})
	for node, pg := range map[string]*harness.Cluster{"fast": harness.SharedPostgres(t), "shunt": shunt} {
		if err := pg.SuperuserExec("DROP TABLE IF EXISTS where_am_i; CREATE TABLE where_am_i (node text); GRANT SELECT ON where_am_i TO PUBLIC; INSERT INTO where_am_i VALUES ('" + node + "')"); err != nil {
			t.Fatal(err)
		}
	}
	return shunt
}

func TestShuntRoutesStatementsOnTheSameSession(t *testing.T) {
	shunt := twoNodes(t)
	sm := startSeamWith(t, shunt, routeTable("where_am_i"))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			c := sm.connect(mode)
			if got := scalar(t, c, "SELECT node FROM where_am_i WHERE node <> $1", "x"); got != "shunt" {
				t.Fatalf("routed statement ran on %q", got)
			}
			if got := scalar(t, c, "SELECT $1::text || ' on fast'", "still"); got != "still on fast" {
				t.Fatal(got)
			}
			if got := scalar(t, c, "SELECT node FROM where_am_i WHERE node <> $1", "y"); got != "shunt" {
				t.Fatalf("second routed statement ran on %q", got)
			}
		})
	}
	var shunted int
	for _, r := range sm.recordsSnapshot() {
		if r.Leg == session.LegShunt {
			shunted++
		}
	}
	if shunted < 8 {
		t.Fatalf("%d records name the shunt node, want the 8 routed statements", shunted)
	}
}

func TestShuntKeepsPreparedStatementsAndSettings(t *testing.T) {
	shunt := twoNodes(t)
	sm := startSeamWith(t, shunt, routeTable("where_am_i"))
	c := sm.connect(pgx.QueryExecModeCacheStatement)
	exec(t, c, "SET application_name = 'moved-over'")
	exec(t, c, "SELECT set_config('pgproxy.test_marker', 'kept', false)")
	if _, err := c.Prepare(context.Background(), "before", "SELECT node || ':' || current_setting('pgproxy.test_marker') || ':' || current_setting('application_name') FROM where_am_i"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := scalar(t, c, "before"); got != "shunt:kept:moved-over" {
			t.Fatalf("prepared before the shunt opened, run there: %q", got)
		}
	}
	if got := scalar(t, c, "SELECT current_user::text"); got != harness.ScramUser {
		t.Fatal(got)
	}
	var user string
	if err := c.QueryRow(context.Background(), "SELECT current_user::text FROM where_am_i").Scan(&user); err != nil || user != harness.ScramUser {
		t.Fatalf("the shunt ran as %q (%v), want the same user as the fast node", user, err)
	}
}

func TestShuntPipelineKeepsOrderAndErrorSemantics(t *testing.T) {
	shunt := twoNodes(t)
	sm := startSeamWith(t, shunt, routeTable("where_am_i"))
	c := sm.connect(pgx.QueryExecModeSimpleProtocol)
	got := pipeline(t, c,
		&pgproto3.Parse{Query: "SELECT 'one'"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT node FROM where_am_i"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT 'three'"}, &pgproto3.Bind{}, &pgproto3.Execute{},
	)
	if kinds(got) != "1 2 D C 1 2 D C 1 2 D C Z" {
		t.Fatalf("answers %q", kinds(got))
	}
	var rows []string
	for _, m := range got {
		if d, ok := m.(*pgproto3.DataRow); ok {
			rows = append(rows, string(d.Values[0]))
		}
	}
	if strings.Join(rows, ",") != "one,shunt,three" {
		t.Fatalf("rows %v, want them in the client's order from the right nodes", rows)
	}
	// An error on the fast node: PostgreSQL would skip the rest of the
	// pipeline, the shunted statement included.
	got = pipeline(t, c,
		&pgproto3.Parse{Query: "SELECT 1/(random()*0)::int"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT node FROM where_am_i"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT 'after'"}, &pgproto3.Bind{}, &pgproto3.Execute{},
	)
	if kinds(got) != "1 2 E Z" {
		t.Fatalf("answers %q: after an error only ReadyForQuery follows", kinds(got))
	}
	// And an error on the shunt.
	got = pipeline(t, c,
		&pgproto3.Parse{Query: "SELECT 'first'"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT 1/(random()*0)::int FROM where_am_i"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT 'skipped'"}, &pgproto3.Bind{}, &pgproto3.Execute{},
	)
	if kinds(got) != "1 2 D C 1 2 E Z" {
		t.Fatalf("answers %q", kinds(got))
	}
	if got := scalar(t, c, "SELECT 'usable'"); got != "usable" {
		t.Fatal(got)
	}
}

func TestShuntDownOrLostLeavesTheSessionUsable(t *testing.T) {
	shunt := twoNodes(t)
	sm := startSeamWith(t, shunt, routeTable("where_am_i"))
	c := sm.connect(pgx.QueryExecModeExec)
	if got := scalar(t, c, "SELECT node FROM where_am_i"); got != "shunt" {
		t.Fatal(got)
	}
	// The shunt's backend is terminated: the next routed statement gets
	// 08006 (or reconnects), the session goes on.
	if err := shunt.SuperuserExec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'scram_user'"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	var node string
	err := c.QueryRow(context.Background(), "SELECT node FROM where_am_i").Scan(&node)
	if err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "08006" && pe.Code != "57P01") || pe.Severity == "FATAL" {
			t.Fatalf("statement on the lost shunt: %v", err)
		}
	}
	if got := scalar(t, c, "SELECT 'fast still works'"); got != "fast still works" {
		t.Fatal(got)
	}
	// The shunt node stops: routed statements are refused with 08006.
	if err := shunt.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = c.QueryRow(context.Background(), "SELECT node FROM where_am_i").Scan(&node)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "08006" && pe.Severity == "ERROR" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the shunt node down: %v (%q)", err, node)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := scalar(t, c, "SELECT 'fast still works'"); got != "fast still works" {
		t.Fatal(got)
	}
	if c.PgConn().IsClosed() {
		t.Fatal("session closed")
	}
}

func TestShuntCancelReachesTheShunt(t *testing.T) {
	shunt := twoNodes(t)
	sm := startSeamWith(t, shunt, routeTable("where_am_i"))
	cfg, err := pgx.ParseConfig("postgres://" + harness.ScramUser + ":" + harness.ScramPass + "@" + sm.addr + "/" + harness.TestDB + "?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
	}
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Exec(ctx, "SELECT pg_sleep(20) FROM where_am_i")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" || time.Since(start) > 10*time.Second {
		t.Fatalf("cancel of a shunted statement: %v after %v", err, time.Since(start))
	}
}

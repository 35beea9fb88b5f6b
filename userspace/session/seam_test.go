package session_test

// The statement seam against a real PostgreSQL (the harness's shared
// cluster): sessions run in-process behind a loopback listener with test
// policies, and real pgx clients or raw pgproto3 pipelines talk to them.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/backend"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/session"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// seam is an in-process proxy in front of the shared cluster.
type seam struct {
	t       *testing.T
	pg      *harness.Cluster
	addr    string
	mu      sync.Mutex
	records []*stmt.Record
	last    *session.Session
}

func startSeam(t *testing.T, policies ...stmt.Policy) *seam {
	t.Helper()
	return startSeamWith(t, nil, policies...)
}

// startSeamWith starts a seam whose sessions may route statements to the
// shunt cluster (nil: no shunt), logging in there as scram_user.
func startSeamWith(t *testing.T, shunt *harness.Cluster, policies ...stmt.Policy) *seam {
	t.Helper()
	return startSeamOpts(t, shunt, true, policies...)
}

// startSeamOpts is startSeamWith; without recorded, sessions keep no
// statement records (the tracker alone follows the statements).
func startSeamOpts(t *testing.T, shunt *harness.Cluster, recorded bool, policies ...stmt.Policy) *seam {
	t.Helper()
	pg := harness.SharedPostgres(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sm := &seam{t: t, pg: pg, addr: ln.Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	dialer, err := backend.NewDialer("disable", "", 5*time.Second, net.KeepAliveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	deps := session.Deps{
		Config:  &session.Config{StartupTimeout: 10 * time.Second, MaxMessageSize: 4 << 20, DefaultDatabase: harness.TestDB},
		Cancels: session.NewCancelRegistry(dialer.Cancel),
		Metrics: telemetry.NewMetrics(),
		Log:     testLogger(),
		Dial: func(ctx context.Context) (net.Conn, bool, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", pg.Addr())
			return c, false, err
		},
		Policies: policies,
		Parser:   sqlparse.NewParser(256),
		Records: func(r *stmt.Record) {
			sm.mu.Lock()
			sm.records = append(sm.records, r)
			sm.mu.Unlock()
		},
	}
	if !recorded {
		deps.Records = nil
	}
	if shunt != nil {
		u, _ := config.ParseBackendURL(fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", harness.ScramUser, harness.ScramPass, shunt.Addr(), harness.TestDB))
		login, err := backend.NewLogin(u, dialer, nil)
		if err != nil {
			t.Fatal(err)
		}
		deps.ShuntDial = func(ctx context.Context, req session.LoginRequest) (*session.Established, error) {
			return login.Dial(ctx, shunt.Addr(), req)
		}
	}
	var id uint64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			id++
			s := session.New(id, c, deps)
			sm.mu.Lock()
			sm.last = s
			sm.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); s.Run(ctx) }()
		}
	}()
	return sm
}

// connect opens a pgx connection through the seam.
func (sm *seam) connect(mode pgx.QueryExecMode) *pgx.Conn {
	sm.t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", harness.ScramUser, harness.ScramPass, sm.addr, harness.TestDB))
	if err != nil {
		sm.t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		sm.t.Fatal(err)
	}
	sm.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// direct opens a pgx connection straight to PostgreSQL (for setup and checks).
func (sm *seam) direct() *pgx.Conn {
	sm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, sm.pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB))
	if err != nil {
		sm.t.Fatal(err)
	}
	sm.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (sm *seam) recordsSnapshot() []*stmt.Record {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return append([]*stmt.Record(nil), sm.records...)
}

func exec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func scalar(t *testing.T, c *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func wantCode(t *testing.T, err error, code string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want SQLSTATE %s, got %v", code, err)
	}
	if pe.Code != code {
		t.Fatalf("want SQLSTATE %s, got %s (%s)", code, pe.Code, pe.Message)
	}
	return pe
}

// tables reports whether a parsed statement reads or writes the named table.
func tables(p *sqlparse.Parsed, name string) bool {
	if p.Err != nil {
		return false
	}
	found := false
	for _, raw := range p.Tree().Stmts {
		sqlparse.Walk(raw, func(m proto.Message) bool {
			if rv, ok := m.(*pg_query.RangeVar); ok && rv.Relname == name {
				found = true
			}
			return !found
		})
	}
	return found
}

// refuseTable refuses every statement that names table at the given protocol
// steps (all when none is given).
func refuseTable(table string, at ...stmt.Protocol) stmt.Policy {
	return stmt.PolicyFunc(func(_ context.Context, st *stmt.Statement) stmt.Decision {
		if len(at) > 0 && !containsProto(at, st.Protocol) {
			return stmt.Decision{}
		}
		if st.SQL == "" || !tables(st.Parsed(), table) {
			return stmt.Decision{}
		}
		return stmt.Decision{Action: stmt.Refuse, Source: "test",
			Err: wire.Refusal(wire.CodeInsufficientPrivilege, "table "+table+" is off limits")}
	})
}

func containsProto(ps []stmt.Protocol, p stmt.Protocol) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// renameTable rewrites every reference to table from into table to, through
// the parse tree and pg_query's deparser.
func renameTable(from, to string) stmt.Policy {
	return stmt.PolicyFunc(func(_ context.Context, st *stmt.Statement) stmt.Decision {
		if st.Protocol == stmt.Bind || !tables(st.Parsed(), from) {
			return stmt.Decision{}
		}
		tree := proto.Clone(st.Parsed().Tree()).(*pg_query.ParseResult)
		for _, raw := range tree.Stmts {
			sqlparse.Walk(raw, func(m proto.Message) bool {
				if rv, ok := m.(*pg_query.RangeVar); ok && rv.Relname == from {
					rv.Relname = to
				}
				return true
			})
		}
		sql, err := pg_query.Deparse(tree)
		if err != nil {
			return stmt.Decision{Action: stmt.Refuse, Err: wire.Refusal(wire.CodeInternalError, err.Error())}
		}
		return stmt.Decision{Action: stmt.Rewrite, SQL: sql, Source: "rename"}
	})
}

// maskColumn asks for the results of statements that name table and masks
// the column called column: text values become "***", int8 values 0 (in the
// format the field announces).
type maskColumn struct{ table, column string }

func (m maskColumn) Decide(_ context.Context, st *stmt.Statement) stmt.Decision {
	if st.Protocol == stmt.Bind || !tables(st.Parsed(), m.table) {
		return stmt.Decision{}
	}
	return stmt.Decision{Results: m, Source: "mask"}
}

func (m maskColumn) Columns(fields []pgproto3.FieldDescription) stmt.RowFunc {
	idx, binary, isInt := -1, false, false
	for i, f := range fields {
		if string(f.Name) == m.column {
			idx, binary, isInt = i, f.Format == 1, f.DataTypeOID == 20
		}
	}
	if idx < 0 {
		return nil
	}
	return func(values [][]byte) ([][]byte, error) {
		if values[idx] == nil {
			return values, nil
		}
		switch {
		case isInt && binary:
			values[idx] = make([]byte, 8)
		case isInt:
			values[idx] = []byte("0")
		default:
			values[idx] = []byte("***")
		}
		return values, nil
	}
}

func TestSeamAllowsAndRecords(t *testing.T) {
	sm := startSeam(t, stmt.PolicyFunc(func(context.Context, *stmt.Statement) stmt.Decision {
		return stmt.Decision{Source: "noop", Verdict: "ok"}
	}))
	d := sm.direct()
	exec(t, d, "DROP TABLE IF EXISTS seam_allow; CREATE TABLE seam_allow (n int); INSERT INTO seam_allow SELECT generate_series(1, 5)")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		c := sm.connect(mode)
		if got := scalar(t, c, "SELECT sum(n)::text FROM seam_allow WHERE n > $1", 0); got != "15" {
			t.Fatalf("mode %v: sum = %s", mode, got)
		}
	}
	var sel []*stmt.Record
	for _, r := range sm.recordsSnapshot() {
		if strings.Contains(r.SQL, "seam_allow") {
			sel = append(sel, r)
		}
	}
	if len(sel) != 3 {
		t.Fatalf("%d records for the 3 statements", len(sel))
	}
	for _, r := range sel {
		if r.Rows != 1 || r.Fingerprint == "" || r.Source != "noop" || r.Verdict != "ok" || r.SQLState != "" || r.Total < r.Backend || r.Total <= 0 {
			t.Errorf("record %+v", *r)
		}
	}
	if sel[0].Fingerprint != sel[1].Fingerprint {
		t.Errorf("simple and extended forms of one statement have different fingerprints")
	}
}

func TestSeamRefusesSimpleQueryAsTheServerWould(t *testing.T) {
	sm := startSeam(t, refuseTable("seam_forbidden"))
	d := sm.direct()
	exec(t, d, "DROP TABLE IF EXISTS seam_forbidden; CREATE TABLE seam_forbidden (n int); DROP TABLE IF EXISTS seam_tx; CREATE TABLE seam_tx (n int)")
	c := sm.connect(pgx.QueryExecModeSimpleProtocol)
	_, err := c.Exec(context.Background(), "SELECT * FROM seam_forbidden")
	pe := wantCode(t, err, "42501")
	if pe.Message != "table seam_forbidden is off limits" || pe.Where != "" {
		t.Fatalf("refusal %q, context %q: want the policy's message and no PL/pgSQL context", pe.Message, pe.Where)
	}
	if got := c.PgConn().TxStatus(); got != 'I' {
		t.Fatalf("tx status %c after a refusal outside a block", got)
	}
	// Inside a block: the block is aborted, the earlier insert rolled back.
	exec(t, c, "BEGIN")
	exec(t, c, "INSERT INTO seam_tx VALUES (1)")
	_, err = c.Exec(context.Background(), "SELECT * FROM seam_forbidden")
	wantCode(t, err, "42501")
	if got := c.PgConn().TxStatus(); got != 'E' {
		t.Fatalf("tx status %c, want E (aborted)", got)
	}
	_, err = c.Exec(context.Background(), "INSERT INTO seam_tx VALUES (2)")
	wantCode(t, err, "25P02")
	exec(t, c, "ROLLBACK")
	if got := scalar(t, d, "SELECT count(*)::text FROM seam_tx"); got != "0" {
		t.Fatalf("%s rows in seam_tx after the aborted block", got)
	}
	if got := scalar(t, c, "SELECT 'still here'"); got != "still here" {
		t.Fatal(got)
	}
}

// pipeline sends msgs then Sync, and returns every answer up to ReadyForQuery.
func pipeline(t *testing.T, c *pgx.Conn, msgs ...pgproto3.FrontendMessage) []pgproto3.BackendMessage {
	t.Helper()
	pc := c.PgConn()
	pc.Conn().SetDeadline(time.Now().Add(10 * time.Second))
	defer pc.Conn().SetDeadline(time.Time{})
	fe := pc.Frontend()
	for _, m := range msgs {
		fe.Send(m)
	}
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var out []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		// Messages are valid until the next Receive: keep copies.
		switch v := m.(type) {
		case *pgproto3.DataRow:
			vals := make([][]byte, len(v.Values))
			for i, x := range v.Values {
				if x != nil {
					vals[i] = append([]byte{}, x...)
				}
			}
			out = append(out, &pgproto3.DataRow{Values: vals})
		case *pgproto3.ErrorResponse:
			e := *v
			out = append(out, &e)
		case *pgproto3.CommandComplete:
			out = append(out, &pgproto3.CommandComplete{CommandTag: append([]byte{}, v.CommandTag...)})
		case *pgproto3.RowDescription:
			rd := &pgproto3.RowDescription{}
			for _, f := range v.Fields {
				f.Name = append([]byte{}, f.Name...)
				rd.Fields = append(rd.Fields, f)
			}
			out = append(out, rd)
		case *pgproto3.ReadyForQuery:
			out = append(out, &pgproto3.ReadyForQuery{TxStatus: v.TxStatus})
			return out
		default:
			out = append(out, m)
		}
	}
}

// kinds names the answers, e.g. "1 2 D C Z".
func kinds(msgs []pgproto3.BackendMessage) string {
	var b []string
	for _, m := range msgs {
		switch m.(type) {
		case *pgproto3.ParseComplete:
			b = append(b, "1")
		case *pgproto3.BindComplete:
			b = append(b, "2")
		case *pgproto3.CloseComplete:
			b = append(b, "3")
		case *pgproto3.ParameterDescription:
			b = append(b, "t")
		case *pgproto3.RowDescription:
			b = append(b, "T")
		case *pgproto3.NoData:
			b = append(b, "n")
		case *pgproto3.DataRow:
			b = append(b, "D")
		case *pgproto3.CommandComplete:
			b = append(b, "C")
		case *pgproto3.ErrorResponse:
			b = append(b, "E")
		case *pgproto3.ReadyForQuery:
			b = append(b, "Z")
		default:
			b = append(b, fmt.Sprintf("%T", m))
		}
	}
	return strings.Join(b, " ")
}

func TestSeamRefusalInAPipelineRollsBackTheWholePipeline(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   stmt.Protocol
	}{{"refused at Parse", stmt.Parse}, {"refused at Bind", stmt.Bind}} {
		t.Run(tc.name, func(t *testing.T) {
			sm := startSeam(t, refuseTable("seam_pipe_forbidden", tc.at))
			d := sm.direct()
			exec(t, d, "DROP TABLE IF EXISTS seam_pipe; CREATE TABLE seam_pipe (n int); DROP TABLE IF EXISTS seam_pipe_forbidden; CREATE TABLE seam_pipe_forbidden (n int)")
			c := sm.connect(pgx.QueryExecModeSimpleProtocol)
			got := pipeline(t, c,
				&pgproto3.Parse{Query: "INSERT INTO seam_pipe VALUES (1)"}, &pgproto3.Bind{}, &pgproto3.Execute{},
				&pgproto3.Parse{Name: "refused", Query: "SELECT n FROM seam_pipe_forbidden WHERE n = $1"},
				&pgproto3.Bind{PreparedStatement: "refused", Parameters: [][]byte{[]byte("1")}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{},
				&pgproto3.Parse{Query: "INSERT INTO seam_pipe VALUES (2)"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			)
			want := "1 2 C E Z" // Parse: the refusal takes ParseComplete's place
			if tc.at == stmt.Bind {
				want = "1 2 C 1 E Z"
			}
			if kinds(got) != want {
				t.Fatalf("answers %q, want %q", kinds(got), want)
			}
			for _, m := range got {
				if e, ok := m.(*pgproto3.ErrorResponse); ok && (e.Code != "42501" || e.Message != "table seam_pipe_forbidden is off limits") {
					t.Fatalf("error %s %s", e.Code, e.Message)
				}
			}
			if z := got[len(got)-1].(*pgproto3.ReadyForQuery); z.TxStatus != 'I' {
				t.Fatalf("tx status %c", z.TxStatus)
			}
			if n := scalar(t, d, "SELECT count(*)::text FROM seam_pipe"); n != "0" {
				t.Fatalf("%s rows committed: the statement before the refusal must be rolled back with the pipeline", n)
			}
			if n := scalar(t, d, "SELECT count(*)::text FROM pg_prepared_statements"); n != "0" {
				// pg_prepared_statements is per session: this checks the direct one, so
				// check through the proxy session below.
				t.Logf("direct session has %s prepared statements", n)
			}
			if tc.at == stmt.Parse {
				if n := scalar(t, c, "SELECT count(*)::text FROM pg_prepared_statements WHERE name = 'refused'"); n != "0" {
					t.Fatal("the refused statement was prepared")
				}
			}
			// The session goes on, and a later pipeline works.
			got = pipeline(t, c, &pgproto3.Parse{Query: "INSERT INTO seam_pipe VALUES (3)"}, &pgproto3.Bind{}, &pgproto3.Execute{})
			if kinds(got) != "1 2 C Z" {
				t.Fatalf("next pipeline: %q", kinds(got))
			}
			if n := scalar(t, d, "SELECT string_agg(n::text, ',')"+" FROM seam_pipe"); n != "3" {
				t.Fatalf("rows %q", n)
			}
		})
	}
}

func TestSeamRefusalAfterAFailedStatementInThePipelineShowsOnlyTheFirstError(t *testing.T) {
	sm := startSeam(t, refuseTable("seam_forbidden2"))
	d := sm.direct()
	exec(t, d, "DROP TABLE IF EXISTS seam_forbidden2; CREATE TABLE seam_forbidden2 (n int)")
	c := sm.connect(pgx.QueryExecModeSimpleProtocol)
	got := pipeline(t, c,
		&pgproto3.Parse{Query: "SELECT 1/(random()*0)::int"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "SELECT * FROM seam_forbidden2"}, &pgproto3.Bind{}, &pgproto3.Execute{},
	)
	if kinds(got) != "1 2 E Z" {
		t.Fatalf("answers %q", kinds(got))
	}
	if e := got[2].(*pgproto3.ErrorResponse); e.Code != "22012" {
		t.Fatalf("first error %s, want division_by_zero", e.Code)
	}
}

func TestSeamRewritesSimpleAndExtended(t *testing.T) {
	sm := startSeam(t, renameTable("seam_alias", "seam_real"))
	d := sm.direct()
	exec(t, d, "DROP TABLE IF EXISTS seam_real; CREATE TABLE seam_real (v text); INSERT INTO seam_real VALUES ('from the real table')")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec} {
		c := sm.connect(mode)
		if got := scalar(t, c, "SELECT v FROM seam_alias WHERE v <> $1", "x"); got != "from the real table" {
			t.Fatalf("mode %v: %q", mode, got)
		}
	}
	// A named statement prepared once, executed twice.
	c := sm.connect(pgx.QueryExecModeCacheStatement)
	if _, err := c.Prepare(context.Background(), "named", "SELECT v FROM seam_alias"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := scalar(t, c, "named"); got != "from the real table" {
			t.Fatal(got)
		}
	}
	// Records keep the client's text, never the rewrite (a masking rewrite
	// can carry key material).
	for _, r := range sm.recordsSnapshot() {
		if strings.Contains(r.SQL, "seam_real") {
			t.Fatalf("record shows the rewritten text, want the client's: %q", r.SQL)
		}
	}
}

func TestSeamResultHookSeesEveryResultShape(t *testing.T) {
	sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	d := sm.direct()
	exec(t, d, "DROP TABLE IF EXISTS seam_people; CREATE TABLE seam_people (name text, secret text, card int8); INSERT INTO seam_people VALUES ('ann', 'hunter2', 4111), ('bob', NULL, 5500)")

	check := func(t *testing.T, rows [][]string) {
		t.Helper()
		want := [][]string{{"ann", "***"}, {"bob", "NULL"}}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Fatalf("rows %v, want %v", rows, want)
		}
	}
	collect := func(t *testing.T, c *pgx.Conn, sql string) [][]string {
		t.Helper()
		rows, err := c.Query(context.Background(), sql)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]string
		for rows.Next() {
			var name string
			var secret *string
			if err := rows.Scan(&name, &secret); err != nil {
				t.Fatal(err)
			}
			s := "NULL"
			if secret != nil {
				s = *secret
			}
			out = append(out, []string{name, s})
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			check(t, collect(t, sm.connect(mode), "SELECT name, secret FROM seam_people ORDER BY name"))
		})
	}
	t.Run("several statements in one Query", func(t *testing.T) {
		c := sm.connect(pgx.QueryExecModeSimpleProtocol)
		res, err := c.PgConn().Exec(context.Background(), "SELECT 1 AS secret; SELECT name, secret FROM seam_people ORDER BY name").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 || string(res[0].Rows[0][0]) != "***" || string(res[1].Rows[0][1]) != "***" || res[1].Rows[1][1] != nil {
			t.Fatalf("results %v", res)
		}
	})
	t.Run("unnamed statement executed without any Describe", func(t *testing.T) {
		c := sm.connect(pgx.QueryExecModeSimpleProtocol)
		got := pipeline(t, c, &pgproto3.Parse{Query: "SELECT name, secret FROM seam_people ORDER BY name"}, &pgproto3.Bind{}, &pgproto3.Execute{})
		if kinds(got) != "1 2 D D C Z" {
			t.Fatalf("answers %q: the proxy's own Describe must not show", kinds(got))
		}
		if v := got[2].(*pgproto3.DataRow).Values; string(v[1]) != "***" {
			t.Fatalf("row %q", v)
		}
	})
	t.Run("binary result format", func(t *testing.T) {
		sm2 := startSeam(t, maskColumn{table: "seam_people", column: "card"})
		c := sm2.connect(pgx.QueryExecModeSimpleProtocol)
		got := pipeline(t, c, &pgproto3.Parse{Name: "cards", Query: "SELECT name, card FROM seam_people ORDER BY name"},
			&pgproto3.Bind{PreparedStatement: "cards", ResultFormatCodes: []int16{0, 1}}, &pgproto3.Execute{})
		if kinds(got) != "1 2 D D C Z" {
			t.Fatalf("answers %q", kinds(got))
		}
		for _, m := range got[2:4] {
			if v := m.(*pgproto3.DataRow).Values; len(v[1]) != 8 || string(v[1]) != string(make([]byte, 8)) {
				t.Fatalf("binary int8 not masked to 0: %x", v[1])
			}
		}
		// pgx's own binary decoding of the masked value.
		var card int64
		c2 := sm2.connect(pgx.QueryExecModeCacheStatement)
		if err := c2.QueryRow(context.Background(), "SELECT card FROM seam_people WHERE name = $1", "ann").Scan(&card); err != nil || card != 0 {
			t.Fatalf("card %d, %v", card, err)
		}
	})
	t.Run("portal described in one pipeline, executed in the next", func(t *testing.T) {
		c := sm.connect(pgx.QueryExecModeSimpleProtocol)
		exec(t, c, "BEGIN")
		got := pipeline(t, c, &pgproto3.Parse{Name: "p1", Query: "SELECT name, secret FROM seam_people ORDER BY name"},
			&pgproto3.Bind{PreparedStatement: "p1", DestinationPortal: "cur"}, &pgproto3.Describe{ObjectType: 'P', Name: "cur"})
		if kinds(got) != "1 2 T Z" {
			t.Fatalf("answers %q", kinds(got))
		}
		got = pipeline(t, c, &pgproto3.Execute{Portal: "cur", MaxRows: 1})
		if kinds(got) != "D PortalSuspended Z" && kinds(got) != "D *pgproto3.PortalSuspended Z" {
			t.Fatalf("answers %q", kinds(got))
		}
		if v := got[0].(*pgproto3.DataRow).Values; string(v[1]) != "***" {
			t.Fatalf("row %q", v)
		}
		got = pipeline(t, c, &pgproto3.Execute{Portal: "cur"})
		if kinds(got) != "D C Z" || got[0].(*pgproto3.DataRow).Values[1] != nil {
			t.Fatalf("answers %q", kinds(got))
		}
		exec(t, c, "COMMIT")
	})
	t.Run("statements that name other tables are not decoded", func(t *testing.T) {
		c := sm.connect(pgx.QueryExecModeSimpleProtocol)
		if got := scalar(t, c, "SELECT 'hunter2' AS secret"); got != "hunter2" {
			t.Fatalf("%q", got)
		}
	})
}

func TestSeamRouteToAnUnknownBackendIsRefused(t *testing.T) {
	sm := startSeam(t, stmt.PolicyFunc(func(_ context.Context, st *stmt.Statement) stmt.Decision {
		if st.Protocol == stmt.Simple && strings.Contains(st.SQL, "shunt me") {
			return stmt.Decision{Action: stmt.Route, Leg: "shunt", Source: "test"}
		}
		return stmt.Decision{}
	}))
	c := sm.connect(pgx.QueryExecModeSimpleProtocol)
	_, err := c.Exec(context.Background(), "SELECT 'shunt me'")
	wantCode(t, err, "08006")
	if got := scalar(t, c, "SELECT 'fast'"); got != "fast" {
		t.Fatal(got)
	}
}

func TestSeamTracksSessionState(t *testing.T) {
	// With records every statement's completion is read; without, only
	// those of statements that change what the tracker follows.
	for _, recorded := range []bool{true, false} {
		t.Run(fmt.Sprintf("recorded=%v", recorded), func(t *testing.T) { testSeamTracksSessionState(t, recorded) })
	}
}

func testSeamTracksSessionState(t *testing.T, recorded bool) {
	sm := startSeamOpts(t, nil, recorded, stmt.PolicyFunc(func(context.Context, *stmt.Statement) stmt.Decision { return stmt.Decision{} }))
	c := sm.connect(pgx.QueryExecModeSimpleProtocol)
	for _, sql := range []string{
		"SET search_path = public",
		"SET statement_timeout = '5s'",
		"SET work_mem = '8MB'; SELECT 1/0", // rolled back with its implicit transaction
		"BEGIN", "SET lock_timeout = '1s'", "SAVEPOINT a", "SET datestyle = 'ISO, DMY'", "ROLLBACK TO a", "COMMIT",
		"BEGIN", "SET timezone = 'UTC'", "ROLLBACK",
		"RESET statement_timeout",
		"SELECT set_config('application_name', 'tracked', false)",
		"PREPARE sqlprep AS SELECT 1",
		// Statements the tracker need not see complete, around and beside
		// ones it must.
		"BEGIN", "SET extra_float_digits = 2", "SELECT 1", "SELECT 2; COMMIT",
		"SELECT 3; SET client_min_messages = warning",
		"BEGIN", "SET intervalstyle = 'iso_8601'", "SELECT 4", "SELECT 5; ROLLBACK",
	} {
		c.PgConn().Exec(context.Background(), sql).ReadAll()
	}
	// The same in the extended protocol (a Parse, Bind and Execute each).
	for _, sql := range []string{"BEGIN", "SET geqo = off", "SELECT 6", "ROLLBACK", "SET geqo_threshold = 10", "SELECT 7"} {
		if _, err := c.Exec(context.Background(), sql, pgx.QueryExecModeExec); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := c.Prepare(context.Background(), "protoprep", "SELECT $1::int + 1"); err != nil {
		t.Fatal(err)
	}
	sm.mu.Lock()
	s := sm.last
	sm.mu.Unlock()
	st := s.State()
	want := "SET search_path = public|SET lock_timeout = '1s'|SELECT set_config('application_name', 'tracked', false)" +
		"|SET extra_float_digits = 2|SET client_min_messages = warning|SET geqo_threshold = 10"
	if got := strings.Join(st.Settings, "|"); got != want {
		t.Fatalf("settings to replay:\n got %s\nwant %s", got, want)
	}
	names := map[string]session.PreparedStatement{}
	for _, p := range st.Prepared {
		names[p.Name] = p
	}
	if p := names["protoprep"]; p.SQL != "SELECT $1::int + 1" || len(p.ParamOIDs) != 0 && p.ParamOIDs[0] != 0 {
		t.Fatalf("protocol-level statement %+v", p)
	}
	if p := names["sqlprep"]; p.PrepareSQL != "PREPARE sqlprep AS SELECT 1" {
		t.Fatalf("SQL-level statement %+v", p)
	}
	if len(names) != 2 {
		t.Fatalf("prepared statements %v", names)
	}
	c.PgConn().Exec(context.Background(), "DEALLOCATE ALL").ReadAll()
	if st := s.State(); len(st.Prepared) != 0 {
		t.Fatalf("after DEALLOCATE ALL: %v", st.Prepared)
	}
}

// testLogger discards session logs unless SEAM_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("SEAM_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

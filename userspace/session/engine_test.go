package session_test

// The statement engine against hostile and unusual message sequences (first
// found by a review of the engine; each test asserts what PostgreSQL would
// do, or that rows a hook must see never pass unchecked).

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgproxy/pgproxy/userspace/auth"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"

	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// raw gives the frontend of a pgx connection for hand-made message sequences.
type raw struct {
	t  *testing.T
	fe *pgproto3.Frontend
	c  *pgx.Conn
}

func rawConn(t *testing.T, sm *seam) *raw {
	c := sm.connect(pgx.QueryExecModeSimpleProtocol)
	c.PgConn().Conn().SetDeadline(time.Now().Add(20 * time.Second))
	return &raw{t: t, fe: c.PgConn().Frontend(), c: c}
}

func (r *raw) send(msgs ...pgproto3.FrontendMessage) {
	r.t.Helper()
	for _, m := range msgs {
		r.fe.Send(m)
	}
	if err := r.fe.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads answers until stop says so (the stopping message included).
func (r *raw) recv(stop func(pgproto3.BackendMessage) bool) []pgproto3.BackendMessage {
	r.t.Helper()
	var out []pgproto3.BackendMessage
	for {
		m, err := r.fe.Receive()
		if err != nil {
			r.t.Fatalf("receive after %q: %v", kinds(out), err)
		}
		var c pgproto3.BackendMessage
		switch v := m.(type) {
		case *pgproto3.DataRow:
			vals := make([][]byte, len(v.Values))
			for i, x := range v.Values {
				if x != nil {
					vals[i] = append([]byte{}, x...)
				}
			}
			c = &pgproto3.DataRow{Values: vals}
		case *pgproto3.CopyData:
			c = &pgproto3.CopyData{Data: append([]byte{}, v.Data...)}
		case *pgproto3.ErrorResponse:
			e := *v
			c = &e
		case *pgproto3.ReadyForQuery:
			c = &pgproto3.ReadyForQuery{TxStatus: v.TxStatus}
		case *pgproto3.FunctionCallResponse:
			c = &pgproto3.FunctionCallResponse{Result: append([]byte{}, v.Result...)}
		default:
			c = m
		}
		out = append(out, c)
		if stop(c) {
			return out
		}
	}
}

func (r *raw) untilZ(n int) []pgproto3.BackendMessage {
	return r.recv(func(m pgproto3.BackendMessage) bool {
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			n--
		}
		return n == 0
	})
}

func isType[T any](m pgproto3.BackendMessage) bool { _, ok := m.(T); return ok }

func dump(msgs []pgproto3.BackendMessage) string {
	var b []string
	for _, m := range msgs {
		switch v := m.(type) {
		case *pgproto3.DataRow:
			var vals []string
			for _, x := range v.Values {
				vals = append(vals, string(x))
			}
			b = append(b, "D"+fmt.Sprint(vals))
		case *pgproto3.CopyData:
			b = append(b, fmt.Sprintf("d%q", v.Data))
		case *pgproto3.ErrorResponse:
			b = append(b, "E("+v.Code+" "+v.Message+")")
		default:
			b = append(b, kinds([]pgproto3.BackendMessage{m}))
		}
	}
	return strings.Join(b, " ")
}

func setupPeople(t *testing.T, sm *seam) {
	exec(t, sm.direct(), "DROP TABLE IF EXISTS seam_people; CREATE TABLE seam_people (name text, secret text, card int8); INSERT INTO seam_people VALUES ('ann', 'hunter2', 4111), ('bob', NULL, 5500)")
}

func noSecret(t *testing.T, what string, msgs []pgproto3.BackendMessage) {
	t.Helper()
	if s := dump(msgs); strings.Contains(s, "hunter2") {
		t.Errorf("%s: unmasked secret reached the client: %s", what, s)
	}
}

// COPY ... TO STDOUT of a statement whose results a hook asked for sends
// the rows as CopyData, which no hook sees: the session ends instead.
func TestEngineCopyOutOfHookedStatementFailsClosed(t *testing.T) {
	for _, msgs := range [][]pgproto3.FrontendMessage{
		{&pgproto3.Query{String: "COPY (SELECT name, secret FROM seam_people) TO STDOUT"}},
		{&pgproto3.Parse{Query: "COPY (SELECT name, secret FROM seam_people) TO STDOUT"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}},
	} {
		sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
		setupPeople(t, sm)
		r := rawConn(t, sm)
		r.send(msgs...)
		var got []pgproto3.BackendMessage
		for {
			m, err := r.fe.Receive()
			if err != nil {
				break
			}
			if d, ok := m.(*pgproto3.CopyData); ok {
				m = &pgproto3.CopyData{Data: append([]byte{}, d.Data...)}
			}
			if e, ok := m.(*pgproto3.ErrorResponse); ok {
				c := *e
				m = &c
			}
			got = append(got, m)
		}
		noSecret(t, "COPY TO STDOUT", got)
		last, ok := got[len(got)-1].(*pgproto3.ErrorResponse)
		if !ok || last.Severity != "FATAL" || last.Code != "XX000" {
			t.Fatalf("answers %s: want the session ended with FATAL XX000", dump(got))
		}
	}
}

// A FunctionCall (the fast-path interface) carries no SQL, and query_to_xml
// runs any SQL: policies see it (Protocol FunctionCall, the function's OID)
// and may refuse it exactly as a statement; in a session whose results are
// checked, it is refused by default.
func TestEngineFunctionCallIsDecided(t *testing.T) {
	var seen []uint32
	refuseFast := stmt.PolicyFunc(func(_ context.Context, st *stmt.Statement) stmt.Decision {
		if st.Protocol != stmt.FunctionCall {
			return stmt.Decision{}
		}
		seen = append(seen, st.Function)
		return stmt.Decision{Action: stmt.Refuse, Source: "test", Err: wire.Refusal("42501", "no fast path")}
	})
	call := func(r *raw) []pgproto3.BackendMessage {
		var oid string
		if err := r.c.QueryRow(context.Background(), "SELECT 'pg_catalog.query_to_xml(text,bool,bool,text)'::regprocedure::oid::text").Scan(&oid); err != nil {
			t.Fatal(err)
		}
		var n uint32
		fmt.Sscan(oid, &n)
		r.send(&pgproto3.FunctionCall{Function: n, ArgFormatCodes: []uint16{0},
			Arguments: [][]byte{[]byte("SELECT * FROM seam_people"), []byte("t"), []byte("f"), []byte("")}, ResultFormatCode: 0})
		return r.untilZ(1)
	}
	sm := startSeam(t, refuseFast)
	setupPeople(t, sm)
	r := rawConn(t, sm)
	got := call(r)
	noSecret(t, "refused FunctionCall", got)
	if !strings.Contains(dump(got), "E(42501 no fast path)") || len(seen) != 1 || seen[0] == 0 {
		t.Fatalf("answers %s, the policy saw %v", dump(got), seen)
	}
	if v := scalar(t, r.c, "SELECT 'usable'"); v != "usable" {
		t.Fatal(v)
	}

	sm2 := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	setupPeople(t, sm2)
	r2 := rawConn(t, sm2)
	r2.send(&pgproto3.Query{String: "SELECT name, secret FROM seam_people"})
	r2.untilZ(1)
	got = call(r2)
	noSecret(t, "FunctionCall in a checked session", got)
	if !strings.Contains(dump(got), "E(42501") {
		t.Fatalf("answers %s: want a 42501 refusal", dump(got))
	}
}

// 3. CopyDone pipelined before the proxy saw CopyInResponse: the Sync the
// server ignored stays queued, and every later answer is matched to the op
// before it — a hooked Query's rows are streamed raw.
func TestEngineCopyDonePipelinedDesyncsQueue(t *testing.T) {
	sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	setupPeople(t, sm)
	r := rawConn(t, sm)
	exec(t, r.c, "CREATE TEMP TABLE sink (a int)")
	r.send(&pgproto3.Query{String: "COPY sink FROM STDIN"}, &pgproto3.Sync{}, &pgproto3.CopyDone{})
	t.Logf("copy: %s", dump(r.untilZ(1)))
	r.send(&pgproto3.Query{String: "SELECT name, secret FROM seam_people ORDER BY name"})
	noSecret(t, "query after pipelined CopyDone", r.untilZ(1))
}

// 5. A libpq-style extended COPY FROM STDIN (Parse/Bind/Execute/Sync, data,
// CopyDone, Sync) whose data fails: the first Sync (ignored by the server
// in COPY) is not dropped because copyIn was cleared by the error.
func TestEngineExtendedCopyErrorDesyncsQueue(t *testing.T) {
	sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	setupPeople(t, sm)
	r := rawConn(t, sm)
	exec(t, r.c, "CREATE TEMP TABLE sink (a int)")
	r.send(&pgproto3.Parse{Query: "COPY sink FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
	r.recv(isType[*pgproto3.CopyInResponse])
	r.send(&pgproto3.CopyData{Data: []byte("not a number\n")})
	r.recv(isType[*pgproto3.ErrorResponse])
	r.send(&pgproto3.CopyDone{}, &pgproto3.Sync{})
	r.untilZ(1)
	r.send(&pgproto3.Query{String: "SELECT name, secret FROM seam_people ORDER BY name"})
	noSecret(t, "query after a failed extended COPY", r.untilZ(1))
}

// 6. A Bind is decided on the text of an in-flight Parse of its name even
// when a Sync separates them and the Parse fails: the server binds the old
// statement the policy never saw at Bind.
func TestEngineBindDecidedOnFailedInflightParse(t *testing.T) {
	sm := startSeam(t, refuseTable("seam_bindonly", stmt.Bind))
	exec(t, sm.direct(), "DROP TABLE IF EXISTS seam_bindonly; CREATE TABLE seam_bindonly (v text); INSERT INTO seam_bindonly VALUES ('forbidden row')")
	r := rawConn(t, sm)
	r.send(&pgproto3.Parse{Name: "s", Query: "SELECT v FROM seam_bindonly"}, &pgproto3.Sync{})
	r.untilZ(1)
	// Check: a direct Bind is refused.
	r.send(&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := r.untilZ(1); strings.Contains(dump(got), "forbidden row") {
		t.Fatalf("control: %s", dump(got))
	}
	r.send(&pgproto3.Parse{Name: "s", Query: "SELECT 'harmless'"}, &pgproto3.Sync{},
		&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := dump(r.untilZ(2)); strings.Contains(got, "forbidden row") {
		t.Errorf("Bind refusal bypassed: %s", got)
	}
}

// 7. A portal that survives ROLLBACK TO SAVEPOINT was forgotten by the
// tracker at the 'E' ReadyForQuery: its rows pass unchecked.
func TestEnginePortalForgottenAtFailedStatusRowsUnchecked(t *testing.T) {
	sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	setupPeople(t, sm)
	r := rawConn(t, sm)
	exec(t, r.c, "BEGIN")
	r.send(&pgproto3.Parse{Query: "SELECT name, secret FROM seam_people ORDER BY name"}, &pgproto3.Bind{DestinationPortal: "p"}, &pgproto3.Sync{})
	r.untilZ(1)
	r.send(&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Sync{}) // the unnamed statement no longer has hooks
	r.untilZ(1)
	r.send(&pgproto3.Query{String: "SAVEPOINT a"})
	r.untilZ(1)
	r.send(&pgproto3.Query{String: "SELECT 1/0"})
	r.untilZ(1)
	r.send(&pgproto3.Query{String: "ROLLBACK TO a"})
	r.untilZ(1)
	r.send(&pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{})
	got := r.untilZ(1)
	t.Logf("execute p: %s", dump(got))
	noSecret(t, "portal after ROLLBACK TO", got)
}

// 8. A cursor declared in SQL (the DECLARE was decided and given hooks) is
// a portal the tracker does not know: Execute of it streams rows raw.
func TestEngineSQLCursorExecutedByProtocolUnchecked(t *testing.T) {
	sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	setupPeople(t, sm)
	r := rawConn(t, sm)
	exec(t, r.c, "BEGIN")
	exec(t, r.c, "DECLARE c CURSOR FOR SELECT name, secret FROM seam_people ORDER BY name")
	r.send(&pgproto3.Execute{Portal: "c"}, &pgproto3.Sync{})
	noSecret(t, "Execute of a SQL cursor", r.untilZ(1))
}

// The refusal's message goes through a literal the proxy writes inside a DO
// block: whatever the message holds (quotes, backslashes, '$', non-ASCII),
// the client gets exactly the refusal; and under a client-only encoding
// (SJIS, where 0x5C can end a multibyte character) non-ASCII text is
// refused before any policy sees it, so nothing of it reaches the server.
func TestEngineRefusalMessagesCannotBreakOut(t *testing.T) {
	sm := startSeam(t, stmt.PolicyFunc(func(_ context.Context, st *stmt.Statement) stmt.Decision {
		if st.Protocol != stmt.Simple || st.Parsed().Err != nil {
			return stmt.Decision{}
		}
		for _, name := range relnames(st.Parsed()) {
			if name != "pg_class" {
				return stmt.Decision{Action: stmt.Refuse, Err: wire.Refusal(wire.CodeInsufficientPrivilege, "table "+name+" is not allowed")}
			}
		}
		return stmt.Decision{}
	}))
	setupPeople(t, sm)
	r := rawConn(t, sm)
	name := "ŕ\\'$pgproxy$; $$ end $$ ☃ \x24"
	r.send(&pgproto3.Query{String: `SELECT * FROM "` + strings.ReplaceAll(name, `"`, `""`) + `"`})
	got := r.untilZ(1)
	var e *pgproto3.ErrorResponse
	for _, m := range got {
		if v, ok := m.(*pgproto3.ErrorResponse); ok {
			e = v
		}
	}
	if e == nil || e.Code != "42501" || e.Message != "table "+name+" is not allowed" {
		t.Fatalf("answers %s: want 42501 with the exact message", dump(got))
	}
	r.send(&pgproto3.Query{String: "SET backslash_quote = on; SET client_encoding = 'SJIS'"})
	r.untilZ(1)
	r.send(&pgproto3.Query{String: `SELECT * FROM "` + "\u0155" + `\'||(SELECT max(secret) FROM seam_people)||E'"`})
	got = r.untilZ(1)
	if s := dump(got); strings.Contains(s, "hunter2") || !strings.Contains(s, "E(22021") {
		t.Fatalf("answers %s: want the non-ASCII text refused with 22021", s)
	}
}

// BUGS.md 42: once the server has reported a client_encoding other than
// UTF8, RESET or a rolled-back SET can take the session back to it inside a
// pipeline, before the server says so: non-ASCII text stays refused for the
// rest of the session, even after a SET back to UTF8.
func TestEngineNonASCIIStaysRefusedAfterAnotherEncoding(t *testing.T) {
	sm := startSeam(t, stmt.PolicyFunc(func(context.Context, *stmt.Statement) stmt.Decision { return stmt.Decision{} }))
	r := rawConn(t, sm)
	r.send(&pgproto3.Query{String: "SELECT 'ŕ' AS before"})
	if s := dump(r.untilZ(1)); strings.Contains(s, "E(") {
		t.Fatalf("non-ASCII text in a UTF8 session: %s", s)
	}
	r.send(&pgproto3.Query{String: "SET client_encoding = 'SJIS'"})
	r.untilZ(1)
	r.send(&pgproto3.Query{String: "SET client_encoding = 'UTF8'"})
	r.untilZ(1)
	r.send(&pgproto3.Query{String: "SELECT 'ŕ' AS after"})
	if s := dump(r.untilZ(1)); !strings.Contains(s, "E(22021") || !strings.Contains(s, "has used SJIS") {
		t.Fatalf("answers %s: want non-ASCII text refused with 22021 after the session used SJIS", s)
	}
	r.send(&pgproto3.Query{String: "SELECT 'ascii' AS still"})
	if s := dump(r.untilZ(1)); strings.Contains(s, "E(") {
		t.Fatalf("ASCII text after the session used SJIS: %s", s)
	}
}

// 10. The settings log grows by one entry per Execute of a set_config with a
// parameter name, without bound (the server holds one value).
func TestEngineSettingsLogGrowsWithoutBound(t *testing.T) {
	sm := startSeam(t, stmt.PolicyFunc(func(context.Context, *stmt.Statement) stmt.Decision { return stmt.Decision{} }))
	r := rawConn(t, sm)
	r.send(&pgproto3.Parse{Name: "sc", Query: "SELECT set_config($1, $2, false)"}, &pgproto3.Sync{})
	r.untilZ(1)
	for range 2000 {
		r.fe.Send(&pgproto3.Bind{PreparedStatement: "sc", Parameters: [][]byte{[]byte("work_mem"), []byte("4MB")}})
		r.fe.Send(&pgproto3.Execute{})
	}
	r.send(&pgproto3.Sync{})
	r.untilZ(1)
	sm.mu.Lock()
	s := sm.last
	sm.mu.Unlock()
	if n := len(s.State().Settings); n > 10 {
		t.Errorf("%d settings to replay for one setting changed 2000 times", n)
	}
	// Same inside a transaction block with a constant name: pending grows.
}

// 11. RESET ALL does not reset role / session_authorization in PostgreSQL,
// but the tracker forgets SET ROLE.
func TestEngineResetAllKeepsRole(t *testing.T) {
	sm := startSeam(t, stmt.PolicyFunc(func(context.Context, *stmt.Statement) stmt.Decision { return stmt.Decision{} }))
	r := rawConn(t, sm)
	exec(t, r.c, "SET ROLE scram_user")
	exec(t, r.c, "RESET ALL")
	role := scalar(t, r.c, "SHOW role")
	sm.mu.Lock()
	s := sm.last
	sm.mu.Unlock()
	st := s.State()
	if role != "none" && !strings.Contains(strings.Join(st.Settings, "|"), "ROLE") {
		t.Errorf("server role is %q after RESET ALL, replay settings %q lose it", role, st.Settings)
	}
}

// 12. Ops the server never answers fill the op queue; the client pump
// blocks in push before forwarding the message the server waits for (Sync
// after an error, CopyDone during COPY): the session hangs, and stays hung
// (with its backend connection) after the client disconnects.
func TestEngineQueueFullDeadlock(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(r *raw)
	}{
		{"ops skipped after an error", func(r *raw) {
			r.fe.Send(&pgproto3.Parse{Query: "SELEC 1"})
			for range 9000 {
				r.fe.Send(&pgproto3.Bind{})
				r.fe.Send(&pgproto3.Execute{})
			}
			r.send(&pgproto3.Sync{})
		}},
		{"syncs during COPY FROM STDIN", func(r *raw) {
			exec(r.t, r.c, "CREATE TEMP TABLE sink (a int)")
			r.send(&pgproto3.Query{String: "COPY sink FROM STDIN"})
			r.recv(isType[*pgproto3.CopyInResponse])
			for range 17000 {
				r.fe.Send(&pgproto3.Sync{})
			}
			r.send(&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, policies := range [][]stmt.Policy{nil, {stmt.PolicyFunc(func(context.Context, *stmt.Statement) stmt.Decision { return stmt.Decision{} })}} {
				sm := startSeam(t, policies...)
				r := rawConn(t, sm)
				r.t = t
				var pid uint32 = r.c.PgConn().PID()
				tc.run(r)
				r.c.PgConn().Conn().SetDeadline(time.Now().Add(5 * time.Second))
				var err error
				for {
					var m pgproto3.BackendMessage
					if m, err = r.fe.Receive(); err != nil || isType[*pgproto3.ReadyForQuery](m) || isType[*pgproto3.CommandComplete](m) {
						break
					}
				}
				r.c.PgConn().Conn().Close()
				sm.mu.Lock()
				s := sm.last
				sm.mu.Unlock()
				if err != nil {
					time.Sleep(2 * time.Second)
					n := scalar(t, sm.direct(), fmt.Sprintf("SELECT count(*)::text FROM pg_stat_activity WHERE pid = %d", pid))
					t.Errorf("policies=%d: no answer within 5s (%v); 2s after the client closed, its backend is still there: %s", len(policies), err, n)
				}
				s.Shutdown() // release the stuck session so the test can end
			}
		})
	}
}

// 13. A refused unnamed Parse: PostgreSQL would have dropped the unnamed
// statement; the proxy's raise is a named statement, so the old one lives on.
func TestEngineRefusedUnnamedParseKeepsOldUnnamed(t *testing.T) {
	sm := startSeam(t, refuseTable("seam_forbidden13"))
	exec(t, sm.direct(), "DROP TABLE IF EXISTS seam_forbidden13; CREATE TABLE seam_forbidden13 (n int)")
	r := rawConn(t, sm)
	r.send(&pgproto3.Parse{Query: "SELECT 'old unnamed'"}, &pgproto3.Sync{})
	r.untilZ(1)
	r.send(&pgproto3.Parse{Query: "SELECT * FROM seam_forbidden13"}, &pgproto3.Sync{})
	r.untilZ(1)
	r.send(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	got := dump(r.untilZ(1))
	if strings.Contains(got, "old unnamed") {
		t.Errorf("after a refused unnamed Parse the previous unnamed statement still runs: %s (PostgreSQL: 26000)", got)
	}
}

// 14. The record of a refusal is lost when the raise is not the message that
// fails (in an aborted block the injected Parse fails with 25P02).
func TestEngineRefusalRecordLostInAbortedBlock(t *testing.T) {
	sm := startSeam(t, refuseTable("seam_forbidden14"))
	exec(t, sm.direct(), "DROP TABLE IF EXISTS seam_forbidden14; CREATE TABLE seam_forbidden14 (n int)")
	r := rawConn(t, sm)
	exec(t, r.c, "BEGIN")
	r.c.Exec(context.Background(), "SELECT 1/0")
	r.send(&pgproto3.Parse{Query: "SELECT * FROM seam_forbidden14"}, &pgproto3.Sync{})
	t.Logf("answer: %s", dump(r.untilZ(1)))
	found := false
	for _, rec := range sm.recordsSnapshot() {
		if strings.Contains(rec.SQL, "seam_forbidden14") {
			found = true
		}
	}
	if !found {
		t.Errorf("no record for the refused Parse")
	}
}

func relnames(p *sqlparse.Parsed) []string {
	var out []string
	for _, raw := range p.Tree().Stmts {
		sqlparse.Walk(raw, func(m proto.Message) bool {
			if rv, ok := m.(*pg_query.RangeVar); ok {
				out = append(out, rv.Relname)
			}
			return true
		})
	}
	return out
}

// 12b. The same with an ordinary pgx batch whose first query fails.
func TestEnginePgxBatchAfterErrorHangs(t *testing.T) {
	sm := startSeam(t)
	c := sm.connect(pgx.QueryExecModeCacheStatement)
	b := &pgx.Batch{}
	b.Queue("SELECT 1/0")
	for i := range 9000 {
		b.Queue("SELECT $1::int", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	start := time.Now()
	err := c.SendBatch(ctx, b).Close()
	t.Logf("batch through the proxy: %v after %v; connection closed: %v", err, time.Since(start), c.IsClosed())
	d := sm.direct()
	b2 := &pgx.Batch{}
	b2.Queue("SELECT 1/0")
	for i := range 9000 {
		b2.Queue("SELECT $1::int", i)
	}
	start = time.Now()
	derr := d.SendBatch(context.Background(), b2).Close()
	t.Logf("batch direct: %v after %v", derr, time.Since(start))
	if time.Since(start) < 2*time.Second && c.IsClosed() {
		t.Errorf("the batch hung through the proxy until the context deadline")
	}
	if err == nil || !strings.Contains(err.Error(), "22012") && !strings.Contains(err.Error(), "division") {
		t.Errorf("batch: %v (want the division_by_zero error, not a hang)", err)
	}
	sm.mu.Lock()
	s := sm.last
	sm.mu.Unlock()
	s.Shutdown()
}

// 15. Text that is not UTF-8 (valid in the client's encoding) does not parse
// in pg_query_go (protobuf rejects the string), so every policy sees
// Parsed().Err and — as LockedSettings documents — lets it through; the
// server runs it.
func TestEngineNonUTF8ClientEncodingHidesStatementFromPolicies(t *testing.T) {
	sm := startSeam(t, refuseTable("seam_forbidden15"))
	exec(t, sm.direct(), "DROP TABLE IF EXISTS seam_forbidden15; CREATE TABLE seam_forbidden15 (v text); INSERT INTO seam_forbidden15 VALUES ('forbidden row')")
	r := rawConn(t, sm)
	r.send(&pgproto3.Query{String: "SET client_encoding = 'LATIN1'"})
	r.untilZ(1)
	r.send(&pgproto3.Query{String: "SELECT v FROM seam_forbidden15 WHERE v <> '\xe9'"})
	if got := dump(r.untilZ(1)); strings.Contains(got, "forbidden row") {
		t.Errorf("refused table read through a LATIN1 query: %s", got)
	}
}

// 16. LockedSettings: the same trick changes application_name past the
// guard; only the ParameterStatus backstop ends the session, and a change
// undone within the same Query is never seen.
func TestEngineLockedSettingsTransientChange(t *testing.T) {
	sm := startSeam(t, stmt.PolicyFunc(func(ctx context.Context, st *stmt.Statement) stmt.Decision {
		f := *st.Facts
		f.Locked = map[string]string{"application_name": ""}
		st.Facts = &f
		return auth_LockedSettings(ctx, st)
	}))
	r := rawConn(t, sm)
	_, err := r.c.Exec(context.Background(), "SET application_name = 'evil'")
	wantCode(t, err, "42501")
	exec(t, r.c, "SET client_encoding = 'LATIN1'")
	r.send(&pgproto3.Query{String: "SET application_name = 'evil'; SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid(); RESET application_name; SELECT '\xe9' AS latin1_hides_this"})
	got := dump(r.untilZ(1))
	t.Logf("%s", got)
	if strings.Contains(got, "D[evil]") {
		t.Errorf("application_name was 'evil' while a statement ran, and the session goes on")
	}
}

func auth_LockedSettings(ctx context.Context, st *stmt.Statement) stmt.Decision {
	return auth.LockedSettings{}.Decide(ctx, st)
}

// 8b. A statement prepared with SQL PREPARE keeps no decision: its hooks
// (asked for at the PREPARE) are lost for protocol Binds and SQL EXECUTE.
func TestEngineSQLPrepareLosesHooks(t *testing.T) {
	sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	setupPeople(t, sm)
	r := rawConn(t, sm)
	exec(t, r.c, "PREPARE sp AS SELECT name, secret FROM seam_people ORDER BY name")
	r.send(&pgproto3.Bind{PreparedStatement: "sp"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	noSecret(t, "protocol Bind of a SQL PREPARE", r.untilZ(1))
	r.send(&pgproto3.Query{String: "EXECUTE sp"})
	noSecret(t, "SQL EXECUTE", r.untilZ(1))
}

// 17. A refused statement in a multi-statement Query: PostgreSQL runs the
// statements before it (BEGIN here), so the client is left in a failed
// block ('E'); the proxy refuses the whole text and leaves it idle ('I').
func TestEngineRefusalInMultiStatementQuery(t *testing.T) {
	sm := startSeam(t, refuseTable("seam_forbidden17"))
	exec(t, sm.direct(), "DROP TABLE IF EXISTS seam_forbidden17; CREATE TABLE seam_forbidden17 (n int)")
	r := rawConn(t, sm)
	r.send(&pgproto3.Query{String: "BEGIN; SELECT * FROM seam_forbidden17"})
	got := r.untilZ(1)
	if z := got[len(got)-1].(*pgproto3.ReadyForQuery); z.TxStatus != 'E' {
		t.Errorf("answers %s, status %c: PostgreSQL would leave the block aborted ('E')", dump(got), z.TxStatus)
	}
}

// 8c. SQL FETCH of a protocol-level portal whose statement has hooks: the
// Query's own decision (text "FETCH ALL p") has none; the tracker's portal
// hooks are not applied to a simple Query.
func TestEngineSQLFetchOfHookedPortal(t *testing.T) {
	sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	setupPeople(t, sm)
	r := rawConn(t, sm)
	exec(t, r.c, "BEGIN")
	r.send(&pgproto3.Parse{Name: "hooked", Query: "SELECT name, secret FROM seam_people ORDER BY name"}, &pgproto3.Bind{PreparedStatement: "hooked", DestinationPortal: "p"}, &pgproto3.Sync{})
	r.untilZ(1)
	r.send(&pgproto3.Query{String: "FETCH ALL p"})
	noSecret(t, "SQL FETCH of a hooked protocol portal", r.untilZ(1))
}

// 8d. A protocol Bind of a statement that a SQL PREPARE earlier in the same
// pipeline makes, and a protocol Execute of a cursor a DECLARE earlier in
// it opens: the tracker learns of both only when the server answers, after
// the Bind and Execute were sent. The proxy describes those portals too, so
// their rows go through the hooks and the session goes on (it used to end
// with XX000 at the first row: columns unknown).
func TestEnginePipelinedPrepareAndDeclare(t *testing.T) {
	sm := startSeam(t, maskColumn{table: "seam_people", column: "secret"})
	setupPeople(t, sm)
	r := rawConn(t, sm)
	for what, msgs := range map[string][]pgproto3.FrontendMessage{
		"Bind of a statement PREPAREd in the pipeline": {&pgproto3.Query{String: "PREPARE sqlprep AS SELECT name, secret FROM seam_people ORDER BY name"},
			&pgproto3.Bind{PreparedStatement: "sqlprep"}, &pgproto3.Execute{}, &pgproto3.Sync{}},
		"Execute of a cursor DECLAREd in the pipeline": {&pgproto3.Query{String: "BEGIN; DECLARE sqlcur CURSOR FOR SELECT name, secret FROM seam_people ORDER BY name"},
			&pgproto3.Execute{Portal: "sqlcur"}, &pgproto3.Sync{}, &pgproto3.Query{String: "COMMIT"}},
	} {
		r.send(msgs...)
		n := 0 // one ReadyForQuery per Query and Sync
		for _, m := range msgs {
			switch m.(type) {
			case *pgproto3.Query, *pgproto3.Sync:
				n++
			}
		}
		got := r.untilZ(n)
		noSecret(t, what, got)
		if d := dump(got); !strings.Contains(d, "D[ann ***]") || strings.Contains(d, "E(") {
			t.Errorf("%s: answers %s, want the masked rows and no error", what, d)
		}
	}
}

// 18. Allocation per DataRow on the no-policy path (and tracked, no hook).
func TestEngineAllocsPerDataRow(t *testing.T) {
	for _, tracked := range []bool{false, true} {
		var policies []stmt.Policy
		if tracked {
			policies = []stmt.Policy{stmt.PolicyFunc(func(context.Context, *stmt.Statement) stmt.Decision { return stmt.Decision{} })}
		}
		sm := startSeam(t, policies...)
		r := rawConn(t, sm)
		run := func(q pgproto3.FrontendMessage, ext bool) {
			if ext {
				r.send(&pgproto3.Parse{Query: "SELECT generate_series(1, 300000)"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
			} else {
				r.send(q)
			}
			for {
				m, err := r.fe.Receive()
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := m.(*pgproto3.ReadyForQuery); ok {
					return
				}
			}
		}
		for _, ext := range []bool{false, true} {
			q := &pgproto3.Query{String: "SELECT generate_series(1, 300000)"}
			run(q, ext)
			var a, b runtimeMemStats
			readMem(&a)
			run(q, ext)
			readMem(&b)
			t.Logf("tracked=%v extended=%v: %.3f mallocs per row (whole process, client included)", tracked, ext, float64(b.Mallocs-a.Mallocs)/300000)
		}
	}
}

type runtimeMemStats = runtime.MemStats

func readMem(m *runtime.MemStats) { runtime.GC(); runtime.ReadMemStats(m) }

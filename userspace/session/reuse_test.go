package session_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
)

// keeper is a policy whose decisions the sessions reuse, and which keeps
// every parse it is given (as a cache of its own might).
type keeper struct {
	epoch atomic.Uint64
	mu    sync.Mutex
	kept  []keptParse
}

type keptParse struct {
	sql    string
	parsed *sqlparse.Parsed
}

func (k *keeper) Decide(_ context.Context, st *stmt.Statement) stmt.Decision {
	k.mu.Lock()
	k.kept = append(k.kept, keptParse{st.SQL, st.Parsed()})
	k.mu.Unlock()
	return stmt.Decision{Source: "keeper"}
}
func (k *keeper) Epoch() uint64                                           { return k.epoch.Load() }
func (k *keeper) Reusable(*stmt.Statement, stmt.Decision) bool            { return true }
func (k *keeper) Reused(_ *stmt.Statement, d stmt.Decision) stmt.Decision { return d }

// TestReusedShapesInAPipeline sends a pipeline of simple Queries of one
// shape, whose decision the session reuses and answers in its scratch
// space, with a decision made afresh in the middle of it: every Query gets
// its own rows and record, and a parse a policy kept still reads its own
// text after the Queries that followed. (The op's own copy of its
// statement is not seen here: every statement a shape stands for is one
// the tracker passes over, whichever text it reads.)
func TestReusedShapesInAPipeline(t *testing.T) {
	k := &keeper{}
	sm := startSeam(t, k)
	r := rawConn(t, sm)
	query := func(i int) *pgproto3.Query { return &pgproto3.Query{String: fmt.Sprintf("SELECT %d AS n", i)} }
	// The first two make the shape's template and put it in the session's
	// index; the third is answered from the index.
	for i := 1; i <= 3; i++ {
		r.send(query(i))
		r.untilZ(1)
	}
	const n = 200
	var msgs []pgproto3.FrontendMessage
	for i := 0; i < n; i++ {
		msgs = append(msgs, query(1000+i))
	}
	for half := 0; half < 2; half++ {
		k.epoch.Add(1) // the first Query of each half is decided again
		r.send(msgs[half*n/2 : (half+1)*n/2]...)
	}
	got := r.untilZ(n)
	var rows []string
	for _, m := range got {
		if d, ok := m.(*pgproto3.DataRow); ok {
			rows = append(rows, string(d.Values[0]))
		}
	}
	if len(rows) != n {
		t.Fatalf("%d rows for %d Queries: %s", len(rows), n, dump(got))
	}
	for i, v := range rows {
		if v != strconv.Itoa(1000+i) {
			t.Fatalf("Query %d answered %s", i, v)
		}
	}
	recs := map[string]int{}
	for _, rec := range sm.recordsSnapshot() {
		recs[rec.SQL] += int(rec.Rows)
	}
	for i := 0; i < n; i++ {
		if sql := query(1000 + i).String; recs[sql] != 1 {
			t.Fatalf("record of %q: %d rows", sql, recs[sql])
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.kept) < 2 || len(k.kept) > 6 {
		t.Fatalf("the policy decided %d times for %d Queries of one shape", len(k.kept), n+3)
	}
	for _, kp := range k.kept {
		if kp.parsed.SQL() != kp.sql || len(kp.parsed.Statements()) != 1 || kp.parsed.Statements()[0].Text != kp.sql {
			t.Errorf("a parse the policy kept for %q now reads %q", kp.sql, kp.parsed.SQL())
		}
	}
}

package analysis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// How a plan is obtained, on a connection of the proxy's own pool:
//
//	BEGIN READ ONLY
//	SELECT set_config('statement_timeout', …, true), set_config('lock_timeout', …, true),
//	       set_config('plan_cache_mode', 'force_generic_plan', true), set_config('jit', 'off', true)
//	EXPLAIN (FORMAT JSON, VERBOSE) <sql>                     -- without parameters
//	Parse pgproxy_explain_N <sql>; EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE pgproxy_explain_N(NULL, …)
//	                                                         -- with parameters: a generic plan
//	[catalog facts for the relations the plan scans]
//	Close pgproxy_explain_N / ROLLBACK / [hypopg_reset()]   -- each after its own Sync
//
// Why READ ONLY, although the transaction is always rolled back: the text
// is the client's, and planning evaluates functions — constant folding runs
// every IMMUTABLE function with constant arguments, selectivity estimation
// runs STABLE ones — and a function's volatility is only what its author
// declared. A function that lies can write. ROLLBACK undoes table writes,
// but not until the end: meanwhile the rows are locked and WAL is written on
// the production primary; and some effects are not transactional at all
// (nextval() and setval() on sequences). In a READ ONLY transaction
// PostgreSQL refuses all of it up front (SQLSTATE 25006): writes to tables
// that are not temporary (the planner's session has none), DDL, nextval().
// So the proxy's account, which clients never see, cannot be made to write
// through the planner. (What READ ONLY cannot stop: effects outside the
// database session, such as dblink, and session-level advisory locks.)
//
// The requests are sent as pipelines (one round trip for the plan, one for
// the facts and the clean-up), with the extended protocol: a Parse message
// holds exactly one statement, so the server itself refuses a text that
// smuggles in a second one. Prepared statements survive ROLLBACK, so the
// statement is closed on every path; when the clean-up cannot be confirmed
// the connection is closed instead of going back to the pool.

// stmtSeq numbers the planner's prepared statements (unique per process).
var stmtSeq atomic.Uint64

// planConn is the pooled connection one Judge uses.
type planConn struct {
	pc      *pgconn.PgConn
	tm      *pgtype.Map
	timeout time.Duration
	dirty   bool // clean-up failed or unknown: close instead of reuse
}

// closeIfDirty closes the connection when its state is not known to be
// clean (the pool then discards it on Release).
func (c *planConn) closeIfDirty() {
	if !c.dirty && c.pc.TxStatus() == 'I' && !c.pc.IsBusy() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.pc.Close(ctx)
}

// request is one request of a pipeline segment.
type request struct {
	sql  string
	args [][]byte
	oids []uint32
	// prepare, when set, sends Parse and Describe of sql as this statement.
	prepare string
	// rows receives each row; the values are valid only during the call.
	rows func(values [][]byte) error
}

// session is one planning transaction run as a pipeline on c.
type session struct {
	c        *planConn
	pl       *pgconn.Pipeline
	cancel   context.CancelFunc
	stop     func() bool
	fired    chan struct{}
	broken   bool  // the connection failed: nothing more can be read
	lost     error // why, when known
	prepared []string
	hypo     string // hypopg's schema, once hypopg_create_index was sent
}

// begin starts a session. The pipeline does not use ctx directly: when ctx
// ends, a cancel request stops the running statement and the session still
// cleans up, so the connection can go back to the pool. Its own deadline
// only covers a server that does not answer at all.
func (c *planConn) begin(ctx context.Context) *session {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*c.timeout+5*time.Second)
	s := &session{c: c, cancel: cancel, fired: make(chan struct{})}
	s.stop = context.AfterFunc(ctx, s.cancelRequest)
	s.pl = c.pc.StartPipeline(pctx)
	return s
}

// cancelRequest asks the server to cancel the statement running on the
// session's connection.
func (s *session) cancelRequest() {
	defer close(s.fired)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.c.pc.CancelRequest(ctx)
}

// queue queues the requests of one segment and its Sync.
func (s *session) queue(reqs []request) {
	for _, r := range reqs {
		if r.prepare != "" {
			s.pl.SendPrepare(r.prepare, r.sql, r.oids)
			continue
		}
		s.pl.SendQueryParams(r.sql, r.args, r.oids, nil, nil)
	}
	s.pl.SendPipelineSync()
}

// flush sends what is queued.
func (s *session) flush() {
	if s.broken {
		return
	}
	if err := s.pl.Flush(); err != nil {
		s.broken, s.lost = true, err
	}
}

// lostErr is the error for a broken session.
func (s *session) lostErr() error {
	if s.lost != nil {
		return s.lost
	}
	return errors.New("connection to the server lost")
}

// read reads the answers to the requests of one segment, up to its Sync.
// It returns the first error: a server error (the server then skipped the
// requests after it), an error of a rows callback, or a connection error
// (then the session is broken).
func (s *session) read(reqs []request) error {
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	i := 0
	for {
		res, err := s.pl.GetResults()
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				s.broken, s.lost = true, err
				return err
			}
			keep(err)
			i = len(reqs)
			continue
		}
		switch r := res.(type) {
		case *pgconn.PipelineSync:
			return first
		case *pgconn.ResultReader:
			var fn func([][]byte) error
			if i < len(reqs) {
				fn = reqs[i].rows
			}
			for r.NextRow() {
				if fn != nil {
					if err := fn(r.Values()); err != nil {
						keep(err)
						fn = nil
					}
				}
			}
			if _, err := r.Close(); err != nil {
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) {
					s.broken, s.lost = true, err
					return err
				}
				keep(err)
				i = len(reqs)
				continue
			}
			i++
		case *pgconn.StatementDescription, *pgconn.CloseComplete:
			i++
		default: // nil: no more answers although a Sync is outstanding
			s.broken, s.lost = true, errors.New("pipeline ended before its sync")
			return s.lost
		}
	}
}

// segment sends the requests and reads their answers.
func (s *session) segment(reqs []request) error {
	if s.broken {
		return s.lostErr()
	}
	s.queue(reqs)
	s.flush()
	if s.broken {
		return s.lostErr()
	}
	return s.read(reqs)
}

// explain opens the read-only transaction and returns EXPLAIN's JSON for
// st. With create set, hypopg_create_index(create) runs first in the
// transaction and the name of the hypothetical index is returned too.
func (s *session) explain(st readStatement, paramOIDs []uint32, hypoSchema, create string) (doc []byte, hypoName string, err error) {
	ms := strconv.FormatInt(s.c.timeout.Milliseconds(), 10) + "ms"
	reqs := []request{
		{sql: "BEGIN READ ONLY"},
		{sql: "SELECT pg_catalog.set_config('statement_timeout', $1, true), pg_catalog.set_config('lock_timeout', $1, true), " +
			"pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true), pg_catalog.set_config('jit', 'off', true)",
			args: [][]byte{[]byte(ms)}, oids: []uint32{pgtype.TextOID}},
	}
	if create != "" {
		s.hypo = hypoSchema
		reqs = append(reqs, request{
			sql:  "SELECT indexname FROM " + quoteIdent(hypoSchema) + ".hypopg_create_index($1)",
			args: [][]byte{[]byte(create)}, oids: []uint32{pgtype.TextOID},
			rows: func(v [][]byte) error { hypoName = string(v[0]); return nil },
		})
	}
	explain := "EXPLAIN (FORMAT JSON, VERBOSE) "
	if n := max(len(paramOIDs), st.params); n > 0 {
		name := "pgproxy_explain_" + strconv.FormatUint(stmtSeq.Add(1), 10)
		s.prepared = append(s.prepared, name)
		nulls := strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ")
		reqs = append(reqs,
			request{prepare: name, sql: st.sql, oids: paramOIDs},
			request{sql: explain + "EXECUTE " + name + "(" + nulls + ")"})
	} else {
		reqs = append(reqs, request{sql: explain + st.sql})
	}
	reqs[len(reqs)-1].rows = func(v [][]byte) error {
		doc = append([]byte(nil), v[0]...)
		return nil
	}
	if err := s.segment(reqs); err != nil {
		return nil, "", err
	}
	if doc == nil {
		return nil, "", errors.New("EXPLAIN returned no plan")
	}
	return doc, hypoName, nil
}

// finish runs after (requests in the still open transaction, whose error
// it returns), then closes the prepared statements, rolls back, removes
// hypothetical indexes, and ends the pipeline. A clean-up that fails marks
// the connection dirty: it is closed rather than reused.
func (s *session) finish(after []request) error {
	defer s.cancel()
	var err error
	if len(after) > 0 {
		s.queue(after)
	}
	var cleanup [][]request
	if len(s.prepared) > 0 {
		var closeReqs []request
		for _, name := range s.prepared {
			s.pl.SendDeallocate(name)
			closeReqs = append(closeReqs, request{})
		}
		s.pl.SendPipelineSync()
		cleanup = append(cleanup, closeReqs)
	}
	rollback := []request{{sql: "ROLLBACK"}}
	s.queue(rollback)
	cleanup = append(cleanup, rollback)
	if s.hypo != "" {
		reset := []request{{sql: "SELECT " + quoteIdent(s.hypo) + ".hypopg_reset()"}}
		s.queue(reset)
		cleanup = append(cleanup, reset)
	}
	s.flush()
	if len(after) > 0 && !s.broken {
		err = s.read(after)
	}
	for _, reqs := range cleanup {
		if s.broken {
			break
		}
		if cerr := s.read(reqs); cerr != nil {
			s.c.dirty = true
		}
	}
	if cerr := s.pl.Close(); cerr != nil || s.broken {
		s.c.dirty = true
	}
	if !s.stop() {
		<-s.fired // the cancel request must not reach a later user of the connection
	}
	if s.broken && err == nil && len(after) > 0 {
		err = s.lostErr()
	}
	return err
}

// firstPlan plans st and reads the catalog facts the checks need: the row
// estimates of the relations scanned sequentially and, when wantHypo, the
// schema of the hypopg extension ("" when it is not installed).
func (c *planConn) firstPlan(ctx context.Context, st readStatement, paramOIDs []uint32, wantHypo bool) (*planNode, map[relKey]tableFacts, string, error) {
	s := c.begin(ctx)
	facts := map[relKey]tableFacts{}
	hypoSchema := ""
	var plan *planNode
	var after []request
	doc, _, err := s.explain(st, paramOIDs, "", "")
	if err == nil {
		plan, err = decodePlan(doc)
	}
	if err == nil {
		keys, filtered := seqScans(plan)
		if len(keys) > 0 {
			r, ferr := factsRequest(c.tm, keys, facts)
			if ferr != nil {
				err = ferr
			} else {
				after = append(after, r)
			}
		}
		if wantHypo && filtered {
			after = append(after, request{
				sql: "SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace " +
					"WHERE e.extname = 'hypopg'",
				rows: func(v [][]byte) error { hypoSchema = string(v[0]); return nil },
			})
		}
	}
	if ferr := s.finish(after); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, nil, "", err
	}
	return plan, facts, hypoSchema, nil
}

// hypotheticalPlan plans st again with the hypothetical index create and
// reports whether the plan uses it.
func (c *planConn) hypotheticalPlan(ctx context.Context, st readStatement, paramOIDs []uint32, hypoSchema, create string) (bool, error) {
	s := c.begin(ctx)
	doc, name, err := s.explain(st, paramOIDs, hypoSchema, create)
	if ferr := s.finish(nil); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return false, err
	}
	if name == "" {
		return false, errors.New("hypopg_create_index returned no index")
	}
	plan, err := decodePlan(doc)
	if err != nil {
		return false, err
	}
	return plan.usesIndex(name), nil
}

// seqScans lists the relations the plan scans sequentially, and whether
// one of those scans has a filter.
func seqScans(root *planNode) (keys []relKey, filtered bool) {
	seen := map[relKey]bool{}
	var walk func(n *planNode)
	walk = func(n *planNode) {
		if n.isSeqScan() && n.RelationName != "" {
			k := relKey{n.Schema, n.RelationName}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			filtered = filtered || n.Filter != ""
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(root)
	return keys, filtered
}

// factsRequest reads pg_class.reltuples of the relations, and the first
// key of each of their valid, non-partial indexes, into facts. The
// relations cannot disappear meanwhile: planning locked them until the
// transaction ends.
func factsRequest(tm *pgtype.Map, keys []relKey, facts map[relKey]tableFacts) (request, error) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = quoteIdent(k.schema) + "." + quoteIdent(k.name)
	}
	arg, err := tm.Encode(pgtype.TextArrayOID, pgtype.TextFormatCode, names, nil)
	if err != nil {
		return request{}, err
	}
	return request{
		sql: "SELECT r.i, c.reltuples::float8, ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, 1, false) " +
			"FROM pg_catalog.pg_index x WHERE x.indrelid = c.oid AND x.indisvalid AND x.indpred IS NULL) " +
			"FROM unnest($1::text[]::pg_catalog.regclass[]) WITH ORDINALITY AS r(oid, i) " +
			"JOIN pg_catalog.pg_class c ON c.oid = r.oid",
		args: [][]byte{arg}, oids: []uint32{pgtype.TextArrayOID},
		rows: func(v [][]byte) error {
			i, err := strconv.Atoi(string(v[0]))
			if err != nil || i < 1 || i > len(keys) {
				return fmt.Errorf("facts: row %q", v[0])
			}
			rows, err := strconv.ParseFloat(string(v[1]), 64)
			if err != nil {
				return fmt.Errorf("reltuples %q: %w", v[1], err)
			}
			var leading []string
			if err := tm.Scan(pgtype.TextArrayOID, pgtype.TextFormatCode, v[2], &leading); err != nil {
				return fmt.Errorf("index keys %q: %w", v[2], err)
			}
			facts[keys[i-1]] = tableFacts{rows: rows, leading: leading}
			return nil
		},
	}, nil
}

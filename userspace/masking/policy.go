package masking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Sources of the policy's decisions (records and metrics).
const (
	SourceRewrite  = "masking"
	SourceUnmasked = "unmasked-role"
)

// Hooks report what the policy does (metrics); each may be nil.
type Hooks struct {
	// Decided counts statements rewritten, refused or passed ("rewritten",
	// "refused", "untouched").
	Decided func(outcome string)
	// CatalogLoaded reports a catalog read (err nil when it worked).
	CatalogLoaded func(database string, took time.Duration, err error)
	// WallMasked counts values the second wall masked.
	WallMasked func(n int)
}

// Policy is the masking statement policy.
type Policy struct {
	cfg atomic.Pointer[Config]
	// Connect returns the proxy's own connection to a database of a server
	// (for the catalog queries).
	Connect func(ctx context.Context, backend, database string) (Querier, error)
	// TTL is how long a database's catalog is trusted before it is read
	// again (METADATA_CACHE_TTL); statements that may change it (DDL) read
	// it again at once.
	TTL   time.Duration
	Log   *slog.Logger
	Hooks Hooks

	// Parser parses the client's text of a Bind's statement (the sessions'
	// shared cache; one of its own when nil).
	Parser *sqlparse.Parser

	// Infer finds the masks of the tables the file does not name
	// (unknown_table_behavior: llm_inference, which refuses every
	// statement without one).
	Infer Inferrer

	// epoch counts configurations put in force and catalogs read or
	// marked stale (Epoch).
	epoch atomic.Uint64
	mu    sync.Mutex
	// unseen is, by database, what statements naming relations its
	// catalog had not seen caused (llm_inference).
	unseen   map[catalogKey]*unseenState
	catalogs map[catalogKey]*catalogEntry
	group    singleflight.Group
}

// catalogKey names one database of one server.
type catalogKey struct{ backend, database string }

type catalogEntry struct {
	cfg    *Config
	cat    *Catalog
	loaded time.Time
	stale  atomic.Bool
}

// unseenState is one database's record of references to relations its
// catalog had not seen (under the policy's mu).
type unseenState struct {
	// at is when such a reference last made the catalog be read again.
	at time.Time
	// names are the references looked for: a catalog read that still does
	// not see one marks it checked (it goes to the server).
	names map[[2]string]bool
}

// maxCatalogs bounds the databases whose catalogs are kept.
const maxCatalogs = 256

// NewPolicy returns the policy for a configuration.
func NewPolicy(cfg *Config, connect func(ctx context.Context, backend, database string) (Querier, error), ttl time.Duration, log *slog.Logger) *Policy {
	p := &Policy{Connect: connect, TTL: ttl, Log: log, catalogs: map[catalogKey]*catalogEntry{}}
	p.cfg.Store(cfg)
	return p
}

func (p *Policy) parser() *sqlparse.Parser {
	if p.Parser != nil { // set once before the first session
		return p.Parser
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Parser == nil {
		p.Parser = sqlparse.NewParser(1024)
	}
	return p.Parser
}

// Config returns the configuration in force.
func (p *Policy) Config() *Config { return p.cfg.Load() }

// SetConfig puts a new configuration in force (a reload); catalogs are read
// again for it.
func (p *Policy) SetConfig(cfg *Config) {
	p.cfg.Store(cfg)
	p.epoch.Add(1)
}

// Epoch implements stmt.Reuser: it changes with the configuration and
// with every catalog read again or marked stale.
func (p *Policy) Epoch() uint64 { return p.epoch.Load() }

// Reusable implements stmt.Reuser: a statement that touches nothing masked
// (decided by shape), or a statement of a role that sees clear values that
// cannot change the catalog (a DDL statement marks it stale each time).
func (p *Policy) Reusable(st *stmt.Statement, d stmt.Decision) bool {
	if d.Action != stmt.Allow || d.Results != nil {
		return false
	}
	switch d.Source {
	case "":
		return true
	case SourceUnmasked:
		return st.SQL == "" || !mayChangeCatalog(st.Parsed())
	}
	return false
}

type catalogChangeKey struct{}

// mayChangeCatalog reports whether a text may change what the catalog
// says: anything but reads, writes, transaction control, settings, cursors
// and prepared statements (decided once per shape).
func mayChangeCatalog(parsed *sqlparse.Parsed) bool {
	if parsed.Err != nil {
		return false
	}
	return parsed.ShapeMemo(catalogChangeKey{}, func() any {
		tree := parsed.ShapeTree()
		if tree == nil {
			return false
		}
		for _, raw := range tree.Stmts {
			n := raw.Stmt
			for n.GetExplainStmt() != nil { // EXPLAIN ANALYZE CREATE MATERIALIZED VIEW ... runs it
				n = n.GetExplainStmt().Query
			}
			switch {
			case n.GetSelectStmt() != nil, n.GetInsertStmt() != nil, n.GetUpdateStmt() != nil, n.GetDeleteStmt() != nil,
				n.GetMergeStmt() != nil, n.GetTransactionStmt() != nil, n.GetVariableSetStmt() != nil,
				n.GetVariableShowStmt() != nil, n.GetCopyStmt() != nil,
				n.GetPrepareStmt() != nil, n.GetExecuteStmt() != nil, n.GetDeallocateStmt() != nil,
				n.GetDeclareCursorStmt() != nil, n.GetFetchStmt() != nil, n.GetClosePortalStmt() != nil,
				n.GetListenStmt() != nil, n.GetNotifyStmt() != nil, n.GetUnlistenStmt() != nil:
			default:
				return true
			}
		}
		return false
	}).(bool)
}

// Reused implements stmt.Reuser: a Query that touches nothing masked is
// counted as such again (a Bind's decision is not counted).
func (p *Policy) Reused(st *stmt.Statement, d stmt.Decision) stmt.Decision {
	if st.Protocol != stmt.Bind && d.Source == "" {
		p.decided("untouched", d)
	}
	return d
}

// Catalog returns the catalog of a database, reading it when it is missing,
// stale or was read for another configuration.
func (p *Policy) Catalog(ctx context.Context, backend, database string) (*Catalog, error) {
	cfg := p.cfg.Load()
	key := catalogKey{backend, database}
	p.mu.Lock()
	e := p.catalogs[key]
	p.mu.Unlock()
	if e != nil && e.cfg == cfg && !e.stale.Load() && (p.TTL <= 0 || time.Since(e.loaded) < p.TTL) {
		return e.cat, nil
	}
	v, err, _ := p.group.Do(backend+"/"+database, func() (any, error) {
		start := time.Now()
		q, err := p.Connect(ctx, backend, database)
		if err == nil {
			var cat *Catalog
			cat, err = p.load(ctx, q, backend, database, cfg)
			if err == nil {
				for _, problem := range cat.Problems {
					p.Log.Error("masking configuration does not fit the database", "database", database, "err", problem)
				}
				if p.Hooks.CatalogLoaded != nil {
					p.Hooks.CatalogLoaded(database, time.Since(start), nil)
				}
				p.mu.Lock()
				if len(p.catalogs) >= maxCatalogs {
					clear(p.catalogs)
				}
				p.catalogs[key] = &catalogEntry{cfg: cfg, cat: cat, loaded: time.Now()}
				p.mu.Unlock()
				p.epoch.Add(1)
				return cat, nil
			}
		}
		if p.Hooks.CatalogLoaded != nil {
			p.Hooks.CatalogLoaded(database, time.Since(start), err)
		}
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*Catalog), nil
}

// load reads a database's catalog; under llm_inference, the Inferrer
// first judges the tables the file does not name, and the unseen names
// statements asked about and still missing are marked checked.
func (p *Policy) load(ctx context.Context, q Querier, backend, database string, cfg *Config) (*Catalog, error) {
	if cfg.UnknownTable != LLMInference {
		return LoadCatalog(ctx, q, cfg)
	}
	if p.Infer == nil {
		return nil, errors.New("unknown_table_behavior llm_inference needs a language model (LLM_PROVIDER and its variables)")
	}
	start := time.Now()
	inf, err := p.Infer.Infer(ctx, q, backend, database, cfg)
	if err != nil {
		return nil, fmt.Errorf("inferring the masks of the tables the masking file does not name: %w", err)
	}
	cat, err := LoadCatalog(ctx, q, cfg.with(inf))
	if err != nil {
		return nil, err
	}
	if err := cat.loadSeen(ctx, q); err != nil {
		return nil, fmt.Errorf("reading the relation names: %w", err)
	}
	cat.refuseUndecided(inf)
	cat.checked = map[[2]string]bool{}
	p.mu.Lock()
	if u := p.unseen[catalogKey{backend, database}]; u != nil {
		for k := range u.names {
			if cat.unseen(k[0], k[1]) {
				cat.checked[k] = true
			}
		}
	}
	p.mu.Unlock()
	masked := 0
	for _, t := range inf.Tables {
		masked += len(t.Columns)
	}
	p.Log.Info("masking: tables the file does not name judged (llm_inference)", "database", database,
		"tables", inf.Judged, "masked_tables", len(inf.Tables), "masked_columns", masked, "undecided", len(inf.Undecided),
		"took", time.Since(start).Round(time.Millisecond))
	return cat, nil
}

// reloadFor reads the catalog of a database again because a statement
// names relations it has not seen (llm_inference), at most once per
// unseenReloadGap per database; false when that is too soon.
func (p *Policy) reloadFor(ctx context.Context, backend, database string, unseen [][2]string) (*Catalog, bool, error) {
	key := catalogKey{backend, database}
	p.mu.Lock()
	if p.unseen == nil {
		p.unseen = map[catalogKey]*unseenState{}
	}
	u := p.unseen[key]
	if u == nil {
		if len(p.unseen) >= maxCatalogs {
			clear(p.unseen)
		}
		u = &unseenState{}
		p.unseen[key] = u
	}
	if u.names == nil || len(u.names) >= maxChecked {
		u.names = map[[2]string]bool{}
	}
	if time.Since(u.at) < unseenReloadGap {
		p.mu.Unlock()
		return nil, false, nil
	}
	u.at = time.Now()
	for _, k := range unseen {
		u.names[k] = true
	}
	p.mu.Unlock()
	p.invalidate(backend, database)
	cat, err := p.Catalog(ctx, backend, database)
	return cat, err == nil, err
}

// retryUndecided makes a later statement read the catalog again (and so
// judge the undecided tables again), at most once per undecidedRetryGap.
func (p *Policy) retryUndecided(backend, database string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.catalogs[catalogKey{backend, database}]; e != nil && time.Since(e.loaded) >= undecidedRetryGap {
		e.stale.Store(true)
		p.epoch.Add(1)
	}
}

// invalidate makes the next statement of a database read its catalog again.
func (p *Policy) invalidate(backend, database string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.catalogs[catalogKey{backend, database}]; e != nil {
		e.stale.Store(true)
	}
	p.epoch.Add(1)
}

type untouchedKey struct{ cat *Catalog }
type rewriteKey struct{ cat *Catalog }

// Decide implements stmt.Policy.
func (p *Policy) Decide(ctx context.Context, st *stmt.Statement) stmt.Decision {
	bind := st.Protocol == stmt.Bind
	if st.Facts == nil || (bind && st.ClientSQL == "") {
		return stmt.Decision{}
	}
	cfg := p.cfg.Load()
	if cfg.Unmasked(st.Facts.Identity, st.Facts.Roles, st.Facts.User) {
		// Its statements are not rewritten, but what its DDL changes (a
		// view over a masked table) must be known to the next statement of
		// a masked session.
		if st.Protocol != stmt.FunctionCall && st.SQL != "" && mayChangeCatalog(st.Parsed()) {
			p.invalidate(st.Facts.Backend, st.Facts.Database)
		}
		return stmt.Decision{Source: SourceUnmasked}
	}
	if st.Protocol == stmt.FunctionCall {
		return p.decided("refused", stmt.Decision{Action: stmt.Refuse, Source: SourceRewrite, Verdict: "refused",
			Err: wire.Refusal(wire.CodeInsufficientPrivilege, "pgproxy masking: function calls by OID (the fast-path interface) are not allowed while masking is on")})
	}
	cat, err := p.Catalog(ctx, st.Facts.Backend, st.Facts.Database)
	if err != nil {
		p.Log.Warn("masking catalog cannot be read; statements are refused until it can", "database", st.Facts.Database, "err", err)
		return p.decided("refused", stmt.Decision{Action: stmt.Refuse, Source: SourceRewrite, Verdict: "refused",
			Err: wire.Refusal(wire.CodeInsufficientPrivilege, "pgproxy masking: the proxy cannot read this database's catalog to check the statement for masked columns").
				WithHint("try again shortly; an operator can see the reason in the proxy's log")})
	}
	parsed := st.Parsed()
	if parsed.Err != nil {
		return stmt.Decision{} // the server reports the syntax error
	}
	if bind {
		return p.decideBind(ctx, cat, st, parsed)
	}
	j, refused := p.seenJudge(ctx, st, cat, parsed)
	if refused != nil {
		return *refused
	}
	if j == untouched {
		return p.decided("untouched", stmt.Decision{})
	}
	if j.res.DDL {
		p.invalidate(st.Facts.Backend, st.Facts.Database)
	}
	if j.res.Undecided {
		p.retryUndecided(st.Facts.Backend, st.Facts.Database)
	}
	return p.outcome(st, parsed, j, false)
}

// seenJudge judges a text under cat; one that names relations the catalog
// had not seen (llm_inference: a table created since, whose masks must be
// inferred first) is judged again after the catalog is read again, or
// refused (the refusal is returned).
func (p *Policy) seenJudge(ctx context.Context, st *stmt.Statement, cat *Catalog, parsed *sqlparse.Parsed) (*judgement, *stmt.Decision) {
	j := p.judge(cat, parsed)
	if j == untouched || len(j.res.Unseen) == 0 {
		return j, nil
	}
	names := j.res.Unseen
	fresh, done, err := p.reloadFor(ctx, st.Facts.Backend, st.Facts.Database, names)
	if done {
		if j = p.judge(fresh, parsed); j == untouched || len(j.res.Unseen) == 0 {
			return j, nil
		}
	}
	if err != nil {
		p.Log.Warn("masking catalog cannot be read; statements are refused until it can", "database", st.Facts.Database, "err", err)
	}
	what := names[0][1]
	if names[0][0] != "" {
		what = names[0][0] + "." + what
	}
	d := p.decided("refused", stmt.Decision{Action: stmt.Refuse, Source: SourceRewrite, Verdict: "refused",
		Err: wire.Refusal(wire.CodeObjectNotInPrerequisiteState, fmt.Sprintf("pgproxy masking: %s is new to the proxy, and its masks are being inferred", what)).
			WithHint("try again in a second")})
	return nil, &d
}

// decideBind judges a Bind. It runs what its Parse was rewritten to,
// perhaps under an earlier configuration or catalog: the client's text is
// judged again (cached), and a statement whose rewrite would now differ is
// refused rather than run with the old masks.
func (p *Policy) decideBind(ctx context.Context, cat *Catalog, st *stmt.Statement, prepared *sqlparse.Parsed) stmt.Decision {
	client := prepared
	if st.ClientSQL != prepared.SQL() {
		if client = p.parser().Parse(st.ClientSQL); client.Err != nil {
			return stmt.Decision{}
		}
	}
	j, refused := p.seenJudge(ctx, st, cat, client)
	if refused != nil {
		return *refused
	}
	if j == untouched {
		return stmt.Decision{}
	}
	if j.res.Err == nil && j.res.SQL != prepared.SQL() {
		return p.decided("refused", stmt.Decision{Action: stmt.Refuse, Source: SourceRewrite, Verdict: "refused",
			Err: wire.Refusal(wire.CodeInsufficientPrivilege, "pgproxy masking: the masking configuration or the catalog changed since this statement was prepared").
				WithHint("prepare the statement again (or reconnect)")})
	}
	return p.outcome(st, client, j, true)
}

// judgement is what the policy makes of one text under one catalog.
type judgement struct {
	res Result
	// hook is the second wall, for statements over masked tables (not
	// COPY, whose rows no hook sees).
	hook stmt.ResultHook
}

// untouched is the judgement of a text that touches nothing masked.
var untouched = &judgement{}

// judge returns the judgement of a text: decided once per shape and
// catalog for a text that touches nothing masked (that depends on the
// shape only), once per text and catalog otherwise.
func (p *Policy) judge(cat *Catalog, parsed *sqlparse.Parsed) *judgement {
	clean := parsed.ShapeMemo(untouchedKey{cat}, func() any {
		tree := proto.Clone(parsed.ShapeTree()).(*pg_query.ParseResult)
		res := cat.Rewrite("", tree)
		return !res.Changed && !res.Touched && !res.DDL && res.Err == nil && len(res.Unseen) == 0
	}).(bool)
	if clean {
		return untouched
	}
	return parsed.Memo(rewriteKey{cat}, func() any {
		j := &judgement{res: cat.Rewrite(parsed.SQL(), proto.Clone(parsed.Tree()).(*pg_query.ParseResult))}
		if j.res.Touched && !j.res.Copy {
			j.hook = &wall{cat: cat, hooks: p.Hooks}
		}
		return j
	}).(*judgement)
}

// outcome turns a judgement into the decision (a Bind cannot rewrite: its
// Parse was).
func (p *Policy) outcome(st *stmt.Statement, parsed *sqlparse.Parsed, j *judgement, bind bool) stmt.Decision {
	res := j.res
	if res.Err != nil {
		p.Log.Info("statement refused by masking", "conn_id", st.Facts.ConnID, "database", st.Facts.Database,
			"fingerprint", parsed.Fingerprint(), "reason", res.Err.Message)
		return p.decided("refused", stmt.Decision{Action: stmt.Refuse, Err: res.Err, Source: SourceRewrite, Verdict: "refused"})
	}
	d := stmt.Decision{Source: SourceRewrite, Verdict: "masked", Results: j.hook}
	if res.Changed && !bind {
		d.Action, d.SQL = stmt.Rewrite, res.SQL
	}
	outcome := "rewritten"
	if !res.Changed {
		outcome, d.Verdict = "untouched", ""
	}
	return p.decided(outcome, d)
}

func (p *Policy) decided(outcome string, d stmt.Decision) stmt.Decision {
	if p.Hooks.Decided != nil {
		p.Hooks.Decided(outcome)
	}
	return d
}

// wall is the second wall: a result column the server still describes as a
// masked column of a masked table is masked by the proxy.
type wall struct {
	cat   *Catalog
	hooks Hooks
}

// Columns implements stmt.ResultHook.
func (w *wall) Columns(fields []pgproto3.FieldDescription) stmt.RowFunc {
	type masked struct {
		i    int
		col  Column
		text bool
	}
	var ms []masked
	for i, f := range fields {
		rel := w.cat.RelationByOID(f.TableOID)
		if rel == nil {
			continue
		}
		for _, c := range rel.Columns {
			if c.Num == int16(f.TableAttributeNumber) && c.Mask != nil {
				ms = append(ms, masked{i: i, col: *c.Mask, text: c.Type.Text})
			}
		}
	}
	if len(ms) == 0 {
		return nil
	}
	key := w.cat.cfg.HMACKey
	return func(values [][]byte) ([][]byte, error) {
		if len(values) != len(fields) {
			return nil, fmt.Errorf("a row of %d values for %d columns", len(values), len(fields))
		}
		for _, m := range ms {
			if values[m.i] == nil {
				continue
			}
			if m.text {
				values[m.i] = MaskText(m.col, key, values[m.i])
			} else {
				values[m.i] = nil
			}
		}
		if w.hooks.WallMasked != nil {
			w.hooks.WallMasked(len(ms))
		}
		return values, nil
	}
}

// detailRemoved replaces the DETAIL of an error or notice of a statement
// over a masked table: PostgreSQL prints rows there ("Failing row contains
// (...)" of a check or not-null violation, the key of a foreign-key
// violation), clear values of the masked columns included.
const detailRemoved = "pgproxy masking removed the detail: it can show values of masked columns"

// Error implements stmt.ErrorHook.
func (w *wall) Error(e *pgproto3.ErrorResponse) {
	if e.Detail != "" {
		e.Detail = detailRemoved
	}
}

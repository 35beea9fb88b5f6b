package session

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
)

// prepared is a prepared statement: made by a Parse (or SQL PREPARE), with
// the policies' decision about it.
type prepared struct {
	name      string
	sql       string // as sent to the server (after any rewrite)
	clientSQL string // as the client sent it (records keep this one)
	paramOIDs []uint32
	parsed    *sqlparse.Parsed // of sql; nil when the tracker did not parse it
	// prepareText is the SQL PREPARE statement that made it (replayed as is);
	// empty for protocol-level statements.
	prepareText string
	// decision made at Parse
	hooks                []stmt.ResultHook
	action               stmt.Action
	source, verdict, leg string
	decide, llm          time.Duration
	fingerprint          string
	// fields is its RowDescription (formats unknown) once described.
	fields []pgproto3.FieldDescription
	// binds is the policies' last decision about a Bind of it, for reuse
	// (client pump only).
	binds stmt.Memo
}

// portal is a portal made by a Bind.
type portal struct {
	name     string
	stmtName string
	// prep is the statement it was bound from, as the server had it when it
	// answered the Bind.
	prep *prepared
	// decision made at Bind (hooks add to those of prep)
	hooks                []stmt.ResultHook
	action               stmt.Action
	source, verdict, leg string
	decide, llm          time.Duration
	// fields is its RowDescription (with the formats of the Bind) once a
	// Describe of it was answered; described is set then (also for NoData).
	fields    []pgproto3.FieldDescription
	described bool
	// cursor is set for a cursor declared in SQL (DECLARE), holdable for
	// one WITH HOLD (it outlives its transaction).
	cursor, holdable bool
}

// client returns the statement's text as the client sent it.
func (p *prepared) client() string {
	if p.clientSQL != "" {
		return p.clientSQL
	}
	return p.sql
}

// allHooks returns the result hooks of the portal's rows: its statement's
// and its own.
func (pt *portal) allHooks() []stmt.ResultHook {
	if pt.prep == nil || len(pt.prep.hooks) == 0 {
		return pt.hooks
	}
	return append(append([]stmt.ResultHook(nil), pt.prep.hooks...), pt.hooks...)
}

// tracker follows, for a session with policies, what the server holds for
// it: transaction status, prepared statements and portals, and the session
// settings a second backend connection would need replayed. Confirmed state
// changes only when the server answers (in the backend pump); the client
// pump reads it, plus the statements it has sent but the server has not yet
// answered, to describe a Bind to the policies.
type tracker struct {
	mu sync.Mutex
	// tx is the status of the last ReadyForQuery and hooked is set once a
	// statement of the session asked for its results: both are read for
	// every statement, without the lock.
	tx         atomic.Uint32
	hooked     atomic.Bool
	statements map[string]*prepared
	inflight   map[string]*prepared
	portals    map[string]*portal
	// declared are the result hooks of cursors DECLAREd by statements the
	// client pump let through, before the server confirms them.
	declared map[string][]stmt.ResultHook
	// preparing are the names of statements SQL PREPAREs the client pump
	// let through with result hooks, before the server confirms them.
	preparing map[string]bool
	settings  settingsLog
	// free are portals the server no longer has, for the next Binds: a
	// portal per execution allocates nothing. Portals leave the map on the
	// backend pump only, and nothing holds one after that pump let it go.
	free freeList[portal]
}

// dropPortal forgets a portal of the map (called with mu held).
func (t *tracker) dropPortal(name string) {
	if pt := t.portals[name]; pt != nil {
		delete(t.portals, name)
		t.recycle(pt)
	}
}

// dropPortals forgets every portal keep says no to (called with mu held).
func (t *tracker) dropPortals(keep func(*portal) bool) {
	if len(t.portals) == 0 {
		return // the common case: no walk
	}
	for name, pt := range t.portals {
		if keep == nil || !keep(pt) {
			delete(t.portals, name)
			t.recycle(pt)
		}
	}
}

// recycle keeps a portal that left the map for reuse (called with mu held).
func (t *tracker) recycle(pt *portal) {
	*pt = portal{}
	t.free.put(pt, 8)
}

func newTracker() *tracker {
	t := &tracker{statements: map[string]*prepared{}, inflight: map[string]*prepared{},
		portals: map[string]*portal{}, declared: map[string][]stmt.ResultHook{}, preparing: map[string]bool{}}
	t.tx.Store('I')
	return t
}

// markHooked notes that a statement of the session asked for its results.
// The client pump calls it before it sends the statement, so every portal,
// cursor and statement with result hooks exists only once isHooked is true.
func (t *tracker) markHooked() { t.hooked.Store(true) }

// isHooked reports whether some statement of the session asked for its
// results.
func (t *tracker) isHooked() bool { return t.hooked.Load() }

// candidates appends to dst the statements a Bind of name may run: the latest
// Parse of that name not yet answered (it may still fail) and the server's.
func (t *tracker) candidates(dst []*prepared, name string) []*prepared {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.candidatesLocked(dst, name)
}

// bindCandidates is candidates for a Bind, with a cleared portal for it (one
// lock for both), and whether a SQL PREPARE of that name with result hooks
// is on its way (the Bind may bind that statement: its rows need hooks).
func (t *tracker) bindCandidates(dst []*prepared, name string) ([]*prepared, *portal, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.candidatesLocked(dst, name), t.free.get(), t.preparing[name]
}

// prepare notes a SQL PREPARE with result hooks a statement let through.
func (t *tracker) prepare(name string) {
	t.mu.Lock()
	noteInFlight(t.preparing, name, true)
	t.mu.Unlock()
}

func (t *tracker) candidatesLocked(dst []*prepared, name string) []*prepared {
	in, ok := t.inflight[name]
	conf := t.statements[name]
	switch {
	case ok && conf != nil && conf != in && name != "":
		return append(dst, in, conf)
	case ok:
		return append(dst, in)
	case conf != nil:
		return append(dst, conf)
	}
	return dst
}

// declare notes a cursor a statement let through is about to DECLARE.
func (t *tracker) declare(name string, hooks []stmt.ResultHook) {
	t.mu.Lock()
	noteInFlight(t.declared, name, hooks)
	t.mu.Unlock()
}

// maxInFlight bounds the DECLAREs and PREPAREs the tracker notes before
// the server answers them: the entries of those that failed are never
// settled, and a client chooses the names. Past it the notes start afresh
// (a cursor or statement then unknown is refused or fails closed).
const maxInFlight = 1000

// noteInFlight adds a name to a map of unanswered DECLAREs or PREPAREs
// (called with mu held).
func noteInFlight[V any](m map[string]V, name string, v V) {
	if len(m) >= maxInFlight {
		clear(m)
	}
	m[name] = v
}

// cursorHooks returns the result hooks of the rows of a cursor or portal
// named in FETCH or MOVE, and whether the proxy knows it.
func (t *tracker) cursorHooks(name string) ([]stmt.ResultHook, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pt := t.portals[name]; pt != nil {
		return pt.allHooks(), true
	}
	h, ok := t.declared[name]
	return h, ok
}

// needsDescribe reports whether an Execute of the portal needs the proxy's
// own Describe first: its rows go through hooks and its columns are not
// known (a cursor declared in SQL, or about to be: a DECLARE on its way
// replaces the portal of that name).
func (t *tracker) needsDescribe(name string) bool {
	if !t.isHooked() {
		return false // no portal has hooks
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.declared[name]; ok {
		return len(h) > 0
	}
	pt := t.portals[name]
	return pt != nil && !pt.described && len(pt.allHooks()) > 0
}

// txStatus returns the status of the last ReadyForQuery.
func (t *tracker) txStatus() byte { return byte(t.tx.Load()) }

// sent records a Parse on its way to the server.
func (t *tracker) sent(p *prepared) {
	t.mu.Lock()
	t.inflight[p.name] = p
	t.mu.Unlock()
}

// portal returns the server's portal of that name.
func (t *tracker) portal(name string) *portal {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.portals[name]
}

// parseAnswered settles a Parse: ParseComplete (ok), an error (failed, the
// server ran it), or skipped after an earlier error in its pipeline.
func (t *tracker) parseAnswered(p *prepared, ok, ran bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inflight[p.name] == p {
		delete(t.inflight, p.name)
	}
	switch {
	case ok:
		t.statements[p.name] = p
	case ran && p.name == "":
		// PostgreSQL drops the unnamed statement before it parses the new one.
		delete(t.statements, "")
	}
}

// bindAnswered installs a portal the server created.
func (t *tracker) bindAnswered(pt *portal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pt.prep = t.statements[pt.stmtName]
	if old := t.portals[pt.name]; old != nil && old != pt {
		t.recycle(old)
	}
	t.portals[pt.name] = pt
}

// closeAnswered forgets a statement or portal the server closed.
func (t *tracker) closeAnswered(target byte, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if target == 'S' {
		delete(t.statements, name)
	} else {
		t.dropPortal(name)
	}
}

// describeExecute fills the record of an Execute of the named portal with
// its statement and the decisions made at Parse and Bind.
func (t *tracker) describeExecute(r *stmt.Record, portalName string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pt := t.portals[portalName]
	if pt == nil {
		return
	}
	r.Name = pt.stmtName
	r.Action, r.Source, r.Verdict, r.Decide, r.LLM = pt.action, pt.source, pt.verdict, pt.decide, pt.llm
	if pt.leg != "" {
		r.Leg = pt.leg
	}
	if p := pt.prep; p != nil {
		r.SQL, r.Fingerprint = p.client(), p.fingerprint
		r.Decide += p.decide
		r.LLM += p.llm
		if pt.source == "" && pt.verdict == "" && pt.action == stmt.Allow {
			r.Action, r.Source, r.Verdict = p.action, p.source, p.verdict
		}
		if pt.leg == "" && p.leg != "" {
			r.Leg = p.leg
		}
	}
}

// described stores a RowDescription (nil for NoData) answering a Describe.
func (t *tracker) described(target byte, name string, fields []pgproto3.FieldDescription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if target == 'S' {
		if p := t.statements[name]; p != nil {
			p.fields = fields
		}
		return
	}
	if pt := t.portals[name]; pt != nil {
		pt.fields, pt.described = fields, true
	}
}

// completed applies what a statement that completed (CommandComplete) did
// to the session: settings, SQL-level prepared statements and cursors
// (with the result hooks of the statement that made them), savepoints. An
// inert statement (sqlparse.Inert) changes none of it and takes no lock.
func (t *tracker) completed(s sqlparse.Stmt, tag []byte, hooks []stmt.ResultHook) {
	if sqlparse.Inert(s) {
		return
	}
	e := sqlparse.SessionEffect(s)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Kind {
	case sqlparse.SetSetting, sqlparse.ResetSetting, sqlparse.ResetAll, sqlparse.DiscardAll:
		t.settings.change(e, s.Text)
	case sqlparse.Savepoint:
		t.settings.savepoint(e.Key)
	case sqlparse.Release:
		t.settings.release(e.Key)
	case sqlparse.RollbackTo:
		t.settings.rollbackTo(e.Key)
	case sqlparse.Prepare:
		t.statements[e.Key] = &prepared{name: e.Key, sql: e.Query, prepareText: s.Text, hooks: hooks}
		delete(t.preparing, e.Key)
	case sqlparse.Declare:
		t.dropPortal(e.Key)
		t.portals[e.Key] = &portal{name: e.Key, hooks: hooks, cursor: true, holdable: e.Hold}
		delete(t.declared, e.Key)
	case sqlparse.ClosePortal:
		if e.All {
			t.dropPortals(nil)
		} else {
			t.dropPortal(e.Key)
		}
	case sqlparse.Deallocate:
		if e.All {
			t.dropNamed()
		} else {
			delete(t.statements, e.Key)
		}
	}
	if e.Kind == sqlparse.DiscardAll {
		t.dropNamed()
		t.dropPortals(nil)
	}
	switch string(tag) {
	case "COMMIT":
		t.settings.commit()
	case "ROLLBACK":
		if e.Kind != sqlparse.RollbackTo {
			t.settings.rollback()
		}
	}
}

// dropNamed forgets every named prepared statement (DEALLOCATE ALL).
func (t *tracker) dropNamed() {
	for name := range t.statements {
		if name != "" {
			delete(t.statements, name)
		}
	}
}

// failed notes an error: the transaction (implicit or explicit) is failed.
func (t *tracker) failed() {
	t.mu.Lock()
	t.settings.errored = true
	t.mu.Unlock()
}

// ready applies a ReadyForQuery: a transaction that ended without error
// keeps its setting changes; portals do not outlive their transaction.
func (t *tracker) ready(status byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tx.Store(uint32(status))
	if status == 'I' {
		if t.settings.errored {
			t.settings.rollback()
		} else {
			t.settings.commit()
		}
		t.settings.errored = false
	}
	if status == 'I' {
		// Portals end with their transaction (a failed block's portals
		// live on until it ends: ROLLBACK TO SAVEPOINT can revive them);
		// WITH HOLD cursors stay.
		t.dropPortals(func(pt *portal) bool { return pt.holdable })
	}
}

// SessionState is what a second backend connection needs to behave like the
// first: the settings to replay, in order, and the named prepared
// statements.
type SessionState struct {
	// Settings are statements (SET ..., SELECT set_config(...)) to run in
	// order.
	Settings []string
	// Prepared are the named prepared statements.
	Prepared []PreparedStatement
	// Uncertain is set when a setting changed in a way the proxy cannot
	// replay (a set_config whose name or value is a parameter).
	Uncertain bool
}

// PreparedStatement is one named prepared statement to re-create.
type PreparedStatement struct {
	Name      string
	SQL       string
	ParamOIDs []uint32
	// PrepareSQL, when set, is the SQL PREPARE that made it (run it as is).
	PrepareSQL string
}

// state returns a copy of the replayable session state.
func (t *tracker) state() SessionState {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := SessionState{Uncertain: t.settings.uncertain}
	for _, c := range t.settings.applied {
		st.Settings = append(st.Settings, c.text)
	}
	for name, p := range t.statements {
		if name == "" {
			continue
		}
		st.Prepared = append(st.Prepared, PreparedStatement{Name: name, SQL: p.sql, ParamOIDs: p.paramOIDs, PrepareSQL: p.prepareText})
	}
	return st
}

// settingsLog holds the setting changes of a session: applied (committed)
// ones, and the pending ones of the transaction in progress, with savepoint
// marks into them.
type settingsLog struct {
	applied    []settingChange
	pending    []pendingChange
	savepoints []savepointMark
	errored    bool // an error since the transaction began
	uncertain  bool
}

type settingChange struct {
	key  string // "" when unknown: such changes are never superseded
	text string
}

type pendingChange struct {
	effect sqlparse.Effect
	text   string
}

type savepointMark struct {
	name string
	at   int
}

// change records a setting change of the transaction in progress. A later
// change of the same setting since the last savepoint replaces the earlier
// one, so the log holds at most one entry per setting and savepoint.
func (l *settingsLog) change(e sqlparse.Effect, text string) {
	from := 0
	if n := len(l.savepoints); n > 0 {
		from = l.savepoints[n-1].at
	}
	if e.Kind == sqlparse.SetSetting || e.Kind == sqlparse.ResetSetting {
		if e.Key == "" || e.Uncertain {
			e, text = sqlparse.Effect{Kind: sqlparse.SetSetting, Uncertain: true, Key: e.Key}, ""
		}
		kept := l.pending[:from]
		for _, p := range l.pending[from:] {
			same := p.effect.Key == e.Key && e.Key != "" && (p.effect.Kind == sqlparse.SetSetting || p.effect.Kind == sqlparse.ResetSetting)
			if !same && !(e.Key == "" && p.effect.Key == "" && p.effect.Uncertain) {
				kept = append(kept, p)
			}
		}
		l.pending = kept
	}
	l.pending = append(l.pending, pendingChange{e, text})
}

func (l *settingsLog) savepoint(name string) {
	l.savepoints = append(l.savepoints, savepointMark{name, len(l.pending)})
}

// release drops the savepoint and those made after it.
func (l *settingsLog) release(name string) {
	for i := len(l.savepoints) - 1; i >= 0; i-- {
		if l.savepoints[i].name == name {
			l.savepoints = l.savepoints[:i]
			return
		}
	}
}

// rollbackTo undoes the changes made since the savepoint, which stays; the
// transaction is usable again.
func (l *settingsLog) rollbackTo(name string) {
	for i := len(l.savepoints) - 1; i >= 0; i-- {
		if l.savepoints[i].name == name {
			l.pending = l.pending[:l.savepoints[i].at]
			l.savepoints = l.savepoints[:i+1]
			l.errored = false
			return
		}
	}
}

func (l *settingsLog) rollback() {
	l.pending, l.savepoints = nil, nil
}

// commit applies the pending changes in order: a setting set again replaces
// its earlier change, RESET removes it, RESET ALL and DISCARD ALL clear all.
func (l *settingsLog) commit() {
	for _, p := range l.pending {
		switch p.effect.Kind {
		case sqlparse.DiscardAll:
			l.applied = nil
			l.uncertain = false
		case sqlparse.ResetAll:
			// RESET ALL leaves role and session_authorization alone.
			kept := l.applied[:0]
			for _, c := range l.applied {
				if c.key == "role" || c.key == "session_authorization" {
					kept = append(kept, c)
				}
			}
			l.applied = kept
		case sqlparse.ResetSetting:
			l.remove(p.effect.Key)
		case sqlparse.SetSetting:
			l.remove(p.effect.Key)
			if p.effect.Uncertain || p.effect.Key == "" {
				l.uncertain = true
				continue
			}
			l.applied = append(l.applied, settingChange{p.effect.Key, p.text})
		}
	}
	l.pending, l.savepoints = nil, nil
}

func (l *settingsLog) remove(key string) {
	if key == "" {
		return
	}
	kept := l.applied[:0]
	for _, c := range l.applied {
		if c.key != key {
			kept = append(kept, c)
		}
	}
	l.applied = kept
}

// State returns what a second backend connection would need replayed to
// behave like this session's: its settings and named prepared statements.
// Sessions without policies or records do not track it (zero value).
func (s *Session) State() SessionState {
	t := s.published.Load()
	if t == nil {
		return SessionState{}
	}
	return t.state()
}

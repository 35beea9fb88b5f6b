package session

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// head returns the op the backend is answering (the oldest outstanding), or
// nil. Copy-end markers, which nothing answers, are passed over. Only this
// goroutine pops, so the head stays the same until popOp.
func (s *Session) head() *op {
	for s.cur == nil {
		o := s.ops.peek()
		if o == nil || o.kind != opCopyEnd {
			s.cur = o
			break
		}
		s.ops.pop()
		s.wake()
	}
	return s.cur
}

// popOp removes the head op once it is answered.
func (s *Session) popOp() {
	s.cur = nil
	s.ops.pop()
	s.wake()
}

// wake lets a pump waiting for its leg's turn look at the new head.
func (s *Session) wake() {
	if s.pumpCond != nil {
		s.pumpCond.Broadcast()
	}
}

// relayBackendMessage relays one backend message to the client and matches
// it to the op it answers: statements are timed and recorded, the tracker
// follows prepared statements, portals and settings, result hooks see rows,
// and answers to the proxy's own messages stay with the proxy. DataRows of
// statements without a hook are streamed as raw frames.
func (s *Session) relayBackendMessage() error {
	typ, _, err := s.in.Header()
	if err != nil {
		return err
	}
	switch typ {
	case 'D':
		o := s.head()
		if o == nil {
			break
		}
		if o.rec != nil {
			o.rows++
		}
		if !o.rowsReady && o.kind == opExecute {
			if err := s.prepareRows(o); err != nil {
				return err
			}
		}
		if o.fns != nil {
			return s.filterRow(o)
		}
	case 'Z':
		return s.readyForQuery()
	case 'E':
		return s.errorResponse()
	case 'C', 'I', 's':
		return s.commandDone(typ)
	case '1', '2', '3', 'n':
		return s.answered(typ)
	case 'T':
		return s.rowDescription()
	case 't':
		if o := s.head(); o != nil && o.injected {
			return s.in.Discard()
		}
	case 'G':
		if o := s.head(); o != nil {
			o.copying = true
		}
		s.ops.copyIn()
	case 'H', 'W': // CopyOutResponse, CopyBothResponse
		if s.resultsHooked(s.head()) {
			// COPY ... TO STDOUT sends rows as CopyData, which no hook sees.
			s.Log.Warn("COPY TO STDOUT of a statement whose results must be checked")
			return s.failClosed()
		}
	case 'S':
		if s.tr != nil || s.Config.Settings != nil || (s.login != nil && len(s.login.Locked) > 0) {
			return s.watchParameter()
		}
	case 'N':
		if o := s.head(); len(s.opHooks(o)) > 0 || s.comment != "" {
			_, msg, err := s.in.Next()
			if err != nil {
				return err
			}
			return s.write(s.filterError(o, msg))
		}
	}
	return s.in.Stream(s.cw)
}

// forward streams the current message to the client, or drops it when it
// answers one of the proxy's own messages.
func (s *Session) forward(injected bool) error {
	if injected {
		return s.in.Discard()
	}
	return s.in.Stream(s.cw)
}

// errDesync ends a session with policies whose answers no longer match the
// messages they answer: result hooks and records could be applied to the
// wrong statement.
var errDesync = wire.Fatal(wire.CodeProtocolViolation, "pgproxy lost track of which message the database server is answering")

// mismatch handles an answer that fits no outstanding message. A session
// with policies ends (fail closed); others log it once and stream on.
func (s *Session) mismatch(typ byte, o *op) error {
	want := "nothing"
	if o != nil {
		want = fmt.Sprintf("op %d", o.kind)
	}
	if s.tr != nil {
		s.Log.Warn("backend answer does not match the outstanding messages; ending the session", "message", string(typ), "expected", want)
		s.fatal.CompareAndSwap(nil, errDesync)
		return errDesync
	}
	if !s.desync {
		s.desync = true
		s.Log.Warn("backend answer does not match the outstanding messages", "message", string(typ), "expected", want)
	}
	return s.in.Stream(s.cw)
}

// answered handles ParseComplete, BindComplete, CloseComplete and NoData.
func (s *Session) answered(typ byte) error {
	o := s.head()
	if o == nil || o.kind != answers(typ) {
		return s.mismatch(typ, o)
	}
	injected := o.injected
	if s.tr != nil {
		switch {
		case typ == '1' && o.raise && o.name == "":
			// The raise of a refused unnamed Parse replaced the unnamed statement.
			s.tr.closeAnswered('S', "")
		case typ == '1' && o.prep != nil:
			s.tr.parseAnswered(o.prep, true, true)
		case typ == '2' && o.portal != nil:
			s.tr.bindAnswered(o.portal)
		case typ == '3' && !injected:
			s.tr.closeAnswered(o.target, o.name)
		case typ == 'n':
			s.tr.described(o.target, o.name, nil)
		}
	}
	s.popOp()
	return s.forward(injected)
}

// answers returns the op kind a one-message answer belongs to.
func answers(typ byte) opKind {
	switch typ {
	case '1':
		return opParse
	case '2':
		return opBind
	case '3':
		return opClose
	}
	return opDescribe // 'n' NoData
}

// rowDescription handles a RowDescription: the answer to a Describe, or the
// start of a result set of a simple Query.
func (s *Session) rowDescription() error {
	o := s.head()
	switch {
	case o == nil:
		return s.mismatch('T', o)
	case o.kind == opDescribe:
		injected := o.injected
		if s.tr != nil {
			_, msg, err := s.in.Next()
			if err != nil {
				return err
			}
			fields, err := s.describedFields(msg)
			if err != nil {
				return err
			}
			s.tr.described(o.target, o.name, fields)
			s.popOp()
			if injected {
				return nil
			}
			return s.write(msg)
		}
		s.popOp()
		return s.forward(injected)
	case o.kind == opQuery && len(o.hooks) > 0:
		_, msg, err := s.in.Next()
		if err != nil {
			return err
		}
		fields, err := s.describedFields(msg)
		if err != nil {
			return err
		}
		o.fields = len(fields)
		o.fns = rowFuncs(o.hooks, fields)
		return s.write(msg)
	case o.kind != opQuery:
		return s.mismatch('T', o)
	}
	return s.in.Stream(s.cw)
}

// commandDone handles CommandComplete, EmptyQueryResponse and
// PortalSuspended: the end of an Execute, or of one statement of a Query.
func (s *Session) commandDone(typ byte) error {
	o := s.head()
	if o == nil || (o.kind != opExecute && o.kind != opQuery) {
		return s.mismatch(typ, o)
	}
	if o.copying {
		o.copying = false
		if s.ops.copyEnded(false) {
			return s.ambiguousCopy()
		}
	}
	o.fns = nil
	if typ == 'C' && s.readsCompletion(o) {
		_, msg, err := s.in.Next()
		if err != nil {
			return err
		}
		var cc pgproto3.CommandComplete
		if err := wire.Decode(msg, &cc); err != nil {
			return fmt.Errorf("%w: malformed CommandComplete", wire.ErrProtocol)
		}
		s.completed(o, cc.CommandTag)
		if o.kind == opExecute {
			s.finishRecord(o)
			injected := o.injected
			s.popOp()
			if injected {
				return nil
			}
		}
		return s.write(msg)
	}
	if o.kind == opQuery {
		if typ != 'I' {
			o.done++
		}
		return s.in.Stream(s.cw)
	}
	// Execute answered by EmptyQueryResponse or PortalSuspended (or a
	// CommandComplete of an untracked session).
	if o.rec != nil {
		o.rec.Rows = o.rows
	}
	s.finishRecord(o)
	injected := o.injected
	s.popOp()
	return s.forward(injected)
}

// readsCompletion reports whether o's CommandComplete is read rather than
// streamed: a record counts its rows, and the tracker applies the statement
// that completed unless it is inert (an Execute's statement is known only
// through its portal, looked up in completed).
func (s *Session) readsCompletion(o *op) bool {
	switch {
	case o.rec != nil:
		return true
	case s.tr == nil:
		return false
	case o.kind == opQuery:
		return o.done < len(o.stmts) && !sqlparse.Inert(o.stmts[o.done])
	}
	return true
}

// completed applies a CommandComplete to the tracker and the record.
func (s *Session) completed(o *op, tag []byte) {
	if o.rec != nil {
		o.rec.Rows += tagRows(tag)
		o.rows = 0
	}
	if s.tr == nil {
		return
	}
	switch o.kind {
	case opQuery:
		if o.done < len(o.stmts) {
			s.tr.completed(o.stmts[o.done], tag, o.hooks)
		}
		o.done++
	case opExecute:
		if o.injected {
			return
		}
		if pt := s.tr.portal(o.name); pt != nil && pt.prep != nil && pt.prep.parsed != nil {
			if st := pt.prep.parsed.Statements(); len(st) == 1 {
				s.tr.completed(st[0], tag, pt.allHooks())
			}
		}
	}
}

// tagRows reads the row count of a command tag ("SELECT 5", "INSERT 0 3").
func tagRows(tag []byte) int64 {
	i := bytes.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(string(tag[i+1:]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// errorResponse forwards an ErrorResponse and settles the op it answers. In
// the extended protocol the failed message ends its answers and the server
// now skips everything up to the next Sync: those ops are dropped.
func (s *Session) errorResponse() error {
	_, msg, err := s.in.Next()
	if err != nil {
		return err
	}
	code := wire.ErrorCode(msg)
	s.lastErr = string(code)
	msg = s.filterError(s.head(), msg)
	if o := s.head(); o != nil {
		if o.copying {
			o.copying = false
			if s.ops.copyEnded(true) {
				return s.ambiguousCopy()
			}
		}
		o.errored, o.fns = true, nil
		if o.raise {
			if clean := cleanRaiseError(msg, o.raiseCode, o.raiseMsg, s.rowBuf[:0]); clean != nil {
				s.rowBuf, msg = clean, clean
			}
		}
		if o.rec != nil && o.rec.SQLState == "" {
			o.rec.SQLState = string(code)
		}
		if !o.kind.syncPoint() {
			if s.tr != nil && o.kind == opParse && o.prep != nil && !o.injected {
				s.tr.parseAnswered(o.prep, false, true)
			}
			failed := s.legOf(o)
			s.finishRaiseRecord(o, string(code))
			s.finishRecord(o)
			s.popOp()
			s.ops.extendedError(failed)
			s.settleDropped()
		}
	}
	if s.tr != nil {
		s.tr.failed()
	}
	s.Metrics.Error(code)
	s.backendFatal = s.backendFatal || wire.IsFatal(msg)
	return s.write(msg)
}

// opHooks returns the result hooks of the statement an op runs.
func (s *Session) opHooks(o *op) []stmt.ResultHook {
	if o == nil || s.tr == nil || o.injected {
		return nil
	}
	switch o.kind {
	case opQuery:
		return o.hooks
	case opExecute:
		if pt := s.tr.portal(o.name); pt != nil {
			return pt.allHooks()
		}
	}
	return nil
}

// filterError lets the error hooks of the statement an ErrorResponse or
// NoticeResponse answers change it, and moves its cursor back over the
// audit comments of the text it answers; it returns the message to
// forward (decoded and encoded again only when one of them applies).
func (s *Session) filterError(o *op, msg []byte) []byte {
	starts, hooks := s.auditStarts(o), s.opHooks(o)
	if len(starts) == 0 && !slices.ContainsFunc(hooks, isErrorHook) {
		return msg
	}
	var e pgproto3.ErrorResponse
	if wire.Decode(msg, &e) != nil {
		return msg
	}
	for _, h := range hooks {
		if eh, ok := h.(stmt.ErrorHook); ok {
			eh.Error(&e)
		}
	}
	s.unaudit(&e, starts)
	var out []byte
	var err error
	if len(msg) > 0 && msg[0] == 'N' {
		out, err = (*pgproto3.NoticeResponse)(&e).Encode(nil)
	} else {
		out, err = e.Encode(nil)
	}
	if err != nil {
		return msg
	}
	return out
}

func isErrorHook(h stmt.ResultHook) bool {
	_, ok := h.(stmt.ErrorHook)
	return ok
}

// settleDropped settles the ops the queue dropped because the server will
// not answer them: a skipped Parse leaves the tracker, a refusal's record
// is emitted with the error that made the server skip it.
func (s *Session) settleDropped() {
	for _, o := range s.ops.takeDropped() {
		if s.tr != nil && o.kind == opParse && o.prep != nil && !o.injected {
			s.tr.parseAnswered(o.prep, false, false)
		}
		s.finishRaiseRecord(o, s.lastErr)
		if o.kind == opQuery && o.raise && o.rec != nil {
			o.rec.SQLState = s.lastErr
			s.finishRecord(o)
		}
		s.ops.mu.Lock()
		s.ops.recycle(o)
		s.ops.mu.Unlock()
	}
}

// finishRaiseRecord emits the record a refused Parse or Bind shares with
// the ops of its raise, the first time one of them fails or is skipped.
func (s *Session) finishRaiseRecord(o *op, code string) {
	r := o.raiseRec
	if r == nil || s.Records == nil || r.Total != 0 {
		return
	}
	o.raiseRec = nil
	if r.SQLState == "" {
		r.SQLState = code
	}
	r.Total = max(time.Since(r.Start), time.Nanosecond)
	s.Records(r)
}

// readyForQuery settles the sync point a ReadyForQuery answers.
func (s *Session) readyForQuery() error {
	_, msg, err := s.in.Next()
	if err != nil {
		return err
	}
	if len(msg) < wire.HeaderLen+1 {
		return fmt.Errorf("%w: short ReadyForQuery", wire.ErrProtocol)
	}
	status := msg[wire.HeaderLen]
	s.settleDropped()
	o := s.head()
	if o == nil || !o.kind.syncPoint() {
		return s.mismatch('Z', o)
	}
	s.Metrics.Statement.Observe(time.Since(o.arrived).Seconds())
	if o.kind == opQuery || o.kind == opFunc {
		s.finishRecord(o)
	}
	injected := o.injected
	s.popOp()
	if s.tr != nil {
		s.tr.ready(status)
	}
	if injected {
		return nil
	}
	return s.write(msg)
}

// ambiguousCopy ends a session whose COPY failed after the client had sent
// Syncs in the middle of its data: the server may have read one of them
// after the error, so which answer belongs to which message is unknowable.
func (s *Session) ambiguousCopy() error {
	e := wire.Fatal(wire.CodeProtocolViolation, "Sync messages in the middle of COPY data cannot be relayed when the COPY fails")
	s.fatal.CompareAndSwap(nil, e)
	return e
}

// finishRecord hands the statement's record to the sink. An Execute's
// record takes its statement and decision from the portal it ran.
func (s *Session) finishRecord(o *op) {
	r := o.rec
	if r == nil {
		return
	}
	o.rec = nil
	if o.kind == opExecute && !o.injected && s.tr != nil {
		s.tr.describeExecute(r, o.name)
	}
	now := time.Now()
	r.Total = now.Sub(r.Start)
	if !o.sent.IsZero() {
		r.Backend = now.Sub(o.sent)
	}
	s.Records(r)
}

// write sends a message the pump read whole.
func (s *Session) write(msg []byte) error {
	if _, err := s.cw.Write(msg); err != nil {
		return &wire.WriteError{Err: err}
	}
	return nil
}

// errLockedSetting ends a session whose locked setting changed.
var errLockedSetting = errors.New("locked setting changed")

// watchParameter forwards a ParameterStatus, noting client_encoding (the
// statement check reads text as UTF-8), unless it shows a locked setting
// with another value: then whatever changed it (a function, a DO block) got
// past the statement check, and the session ends before anything else runs.
func (s *Session) watchParameter() error {
	_, msg, err := s.in.Next()
	if err != nil {
		return err
	}
	var ps pgproto3.ParameterStatus
	if err := wire.Decode(msg, &ps); err != nil {
		return fmt.Errorf("%w: malformed ParameterStatus", wire.ErrProtocol)
	}
	name, value := ps.Name, ps.Value
	if name == "client_encoding" {
		s.setClientEncoding(value)
	}
	if e := s.Config.Settings.reported(name, value); e != nil {
		s.fatal.CompareAndSwap(nil, e)
		return errLockedSetting
	}
	if s.login != nil {
		if want, locked := s.login.Locked[name]; locked && value != want {
			s.fatal.CompareAndSwap(nil, wire.Fatal(wire.CodeInsufficientPrivilege,
				fmt.Sprintf("%s is set by pgproxy for auditing and cannot be changed", name)))
			return errLockedSetting
		}
	}
	return s.write(msg)
}

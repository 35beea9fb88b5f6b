package session

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// head returns the op the backend is answering (the oldest outstanding), or
// nil. Only this goroutine pops, so the head stays the same until popOp.
func (s *Session) head() *op {
	if s.cur == nil {
		s.cur = s.ops.peek()
	}
	return s.cur
}

// popOp removes the head op once it is answered.
func (s *Session) popOp() {
	s.cur = nil
	s.ops.pop()
}

// relayBackendMessage relays one backend message to the client and matches
// it to the op it answers: statements are timed and recorded, the tracker
// follows prepared statements, portals and settings, result hooks see rows,
// and answers to the proxy's own messages stay with the proxy. DataRows of
// statements without a hook are streamed as raw frames.
func (s *Session) relayBackendMessage() error {
	typ, _, err := s.br.Header()
	if err != nil {
		return err
	}
	switch typ {
	case 'D':
		o := s.head()
		if o == nil {
			break
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
			return s.br.Discard()
		}
	case 'G':
		s.copyIn.Store(true)
	case 'S':
		if s.login != nil && len(s.login.Locked) > 0 {
			return s.watchParameter()
		}
	}
	return s.br.Stream(s.cw)
}

// forward streams the current message to the client, or drops it when it
// answers one of the proxy's own messages.
func (s *Session) forward(injected bool) error {
	if injected {
		return s.br.Discard()
	}
	return s.br.Stream(s.cw)
}

// mismatch notes an answer that fits no outstanding message (logged once per
// session); the answer is still forwarded.
func (s *Session) mismatch(typ byte, o *op) {
	if s.desync {
		return
	}
	s.desync = true
	want := "nothing"
	if o != nil {
		want = fmt.Sprintf("op %d", o.kind)
	}
	s.Log.Warn("backend answer does not match the outstanding messages", "message", string(typ), "expected", want)
}

// answered handles ParseComplete, BindComplete, CloseComplete and NoData.
func (s *Session) answered(typ byte) error {
	o := s.head()
	if o == nil || o.kind != answers(typ) {
		s.mismatch(typ, o)
		return s.br.Stream(s.cw)
	}
	injected := o.injected
	if s.tr != nil && !injected {
		switch typ {
		case '1':
			if o.prep != nil {
				s.tr.parseAnswered(o.prep, true, true)
			}
		case '2':
			if o.portal != nil {
				s.tr.bindAnswered(o.portal)
			}
		case '3':
			s.tr.closeAnswered(o.target, o.name)
		case 'n':
			s.tr.described(o.target, o.name, nil)
		}
	}
	if typ == 'n' && injected && s.tr != nil {
		s.tr.described('P', o.name, nil)
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
		return s.br.Stream(s.cw)
	case o.kind == opDescribe:
		injected := o.injected
		if s.tr != nil {
			_, msg, err := s.br.Next()
			if err != nil {
				return err
			}
			fields, err := decodeFields(msg)
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
		_, msg, err := s.br.Next()
		if err != nil {
			return err
		}
		fields, err := decodeFields(msg)
		if err != nil {
			return err
		}
		o.fns = rowFuncs(o.hooks, fields)
		return s.write(msg)
	}
	return s.br.Stream(s.cw)
}

// commandDone handles CommandComplete, EmptyQueryResponse and
// PortalSuspended: the end of an Execute, or of one statement of a Query.
func (s *Session) commandDone(typ byte) error {
	o := s.head()
	if o == nil || (o.kind != opExecute && o.kind != opQuery) {
		s.mismatch(typ, o)
		return s.br.Stream(s.cw)
	}
	s.endCopy()
	o.fns = nil
	var tag []byte
	if typ == 'C' && (s.tr != nil || o.rec != nil) {
		_, msg, err := s.br.Next()
		if err != nil {
			return err
		}
		var cc pgproto3.CommandComplete
		if err := wire.Decode(msg, &cc); err != nil {
			return fmt.Errorf("%w: malformed CommandComplete", wire.ErrProtocol)
		}
		tag = cc.CommandTag
		s.completed(o, tag)
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
		return s.br.Stream(s.cw)
	}
	// Execute answered by EmptyQueryResponse or PortalSuspended (or a
	// CommandComplete of an untracked session).
	o.rowsReady = false
	s.finishRecord(o)
	injected := o.injected
	s.popOp()
	return s.forward(injected)
}

// completed applies a CommandComplete to the tracker and the record.
func (s *Session) completed(o *op, tag []byte) {
	if o.rec != nil {
		o.rec.Rows += tagRows(tag)
	}
	if s.tr == nil {
		return
	}
	switch o.kind {
	case opQuery:
		if o.done < len(o.stmts) {
			s.tr.completed(o.stmts[o.done], tag)
		}
		o.done++
	case opExecute:
		if o.injected {
			return
		}
		if pt := s.tr.portal(o.name); pt != nil && pt.prep != nil && pt.prep.parsed != nil {
			if st := pt.prep.parsed.Statements(); len(st) == 1 {
				s.tr.completed(st[0], tag)
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
// now skips everything up to the next Sync.
func (s *Session) errorResponse() error {
	_, msg, err := s.br.Next()
	if err != nil {
		return err
	}
	s.endCopy()
	code := wire.ErrorCode(msg)
	if o := s.head(); o != nil {
		o.errored, o.fns = true, nil
		if o.raise {
			if clean := cleanRaiseError(msg, s.rowBuf[:0]); clean != nil {
				s.rowBuf, msg = clean, clean
			}
		}
		if o.rec != nil && o.rec.SQLState == "" {
			o.rec.SQLState = string(code)
		}
		if !o.kind.syncPoint() {
			s.extFailed = true
			if s.tr != nil && o.kind == opParse && o.prep != nil && !o.injected {
				s.tr.parseAnswered(o.prep, false, true)
			}
			s.finishRecord(o)
			s.popOp()
		}
	}
	if s.tr != nil {
		s.tr.failed()
	}
	s.Metrics.Error(code)
	s.backendFatal = s.backendFatal || wire.IsFatal(msg)
	return s.write(msg)
}

// readyForQuery settles the sync point a ReadyForQuery answers, and the
// extended-protocol messages before it that the server skipped after an
// error.
func (s *Session) readyForQuery() error {
	_, msg, err := s.br.Next()
	if err != nil {
		return err
	}
	if len(msg) < wire.HeaderLen+1 {
		return fmt.Errorf("%w: short ReadyForQuery", wire.ErrProtocol)
	}
	status := msg[wire.HeaderLen]
	injected := false
	for {
		o := s.head()
		if o == nil {
			break
		}
		if !o.kind.syncPoint() || (s.extFailed && o.kind != opSync) {
			if !o.kind.syncPoint() && !s.extFailed {
				s.mismatch('Z', o)
			}
			if s.tr != nil && o.kind == opParse && o.prep != nil && !o.injected {
				s.tr.parseAnswered(o.prep, false, false)
			}
			s.popOp() // skipped by the server: no record, it never ran
			continue
		}
		s.Metrics.Statement.Observe(time.Since(o.arrived).Seconds())
		if o.kind == opQuery {
			s.finishRecord(o)
		}
		injected = o.injected
		s.popOp()
		break
	}
	s.extFailed = false
	if s.tr != nil {
		s.tr.ready(status)
	}
	if injected {
		return nil
	}
	return s.write(msg)
}

// endCopy notes that a COPY ended (its CommandComplete or error).
func (s *Session) endCopy() {
	if s.copyIn.Load() {
		s.copyIn.Store(false)
	}
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

// watchParameter forwards a ParameterStatus unless it shows a locked setting
// with another value: then whatever changed it (a function, a DO block) got
// past the statement check, and the session ends before anything else runs.
func (s *Session) watchParameter() error {
	_, msg, err := s.br.Next()
	if err != nil {
		return err
	}
	var ps pgproto3.ParameterStatus
	if err := wire.Decode(msg, &ps); err != nil {
		return fmt.Errorf("%w: malformed ParameterStatus", wire.ErrProtocol)
	}
	name, value := ps.Name, ps.Value
	if want, locked := s.login.Locked[name]; locked && value != want {
		s.fatal.CompareAndSwap(nil, wire.Fatal(wire.CodeInsufficientPrivilege,
			fmt.Sprintf("%s is set by pgproxy for auditing and cannot be changed", name)))
		return errLockedSetting
	}
	return s.write(msg)
}

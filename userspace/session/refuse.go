package session

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// raiseStatementName is the prepared statement the proxy uses to raise a
// refusal inside an extended-protocol pipeline.
const raiseStatementName = "pgproxy.refusal"

// A refused statement behaves exactly as if PostgreSQL had raised the error
// at that point, because PostgreSQL does raise it: in place of the refused
// message the proxy sends a statement that fails with the refusal's SQLSTATE
// and message. The server then applies its own error semantics: an open
// transaction block is aborted; in a pipeline the implicit transaction is
// rolled back with everything sent before in it, the messages after it are
// skipped up to Sync, and one ErrorResponse then ReadyForQuery follow; if the
// pipeline had already failed, the raise is skipped too and the client sees
// only the first error.

// refuseSimple replaces a refused Query (or FunctionCall, sql "") with one
// that raises the refusal. In a Query of several statements, the ones
// before the first refused statement run first, in the same Query, as
// PostgreSQL would run them before failing (a BEGIN among them leaves the
// block aborted; in an implicit transaction they are rolled back with it).
func (s *Session) refuseSimple(sql string, out *stmt.Outcome, rec *stmt.Record, arrived time.Time) error {
	before, hooks, refusal := "", []stmt.ResultHook(nil), out
	if sql != "" && len(s.Policies) > 0 {
		before, hooks, refusal = s.refusalPoint(sql, out)
	}
	s.noteRefusal(refusal)
	if rec != nil {
		rec.Source = refusal.Source
	}
	text := raiseStatement(refusal.Err)
	if before != "" {
		text = before + "\n; " + text // before may end in a -- comment
	}
	if err := s.switchTo(s.fast, arrived); err != nil {
		return err
	}
	o := s.newOp(opQuery, arrived)
	o.raise, o.raiseCode, o.raiseMsg, o.rec, o.hooks = true, refusal.Err.Code, refusal.Err.Message, rec, hooks
	o.stmts = s.parsedStatements(text)
	text, o.audit = s.audited(text, o.stmts)
	buf, err := wire.Encode(s.scratch[:0], &pgproto3.Query{String: text})
	if err != nil {
		return err
	}
	s.scratch = buf
	return s.send(o, buf)
}

// refuseExtended replaces a refused Parse or Bind with the proxy's own
// Close, Parse, Bind and Execute of a statement that raises the refusal; no
// Sync is added, so the pipeline's implicit transaction fails as a whole.
// The client's messages after it are skipped up to its Sync, as the server
// would skip them.
//
// A refused Parse of the unnamed statement raises through the unnamed
// statement itself, as PostgreSQL drops the old unnamed statement when a
// Parse of it fails.
func (s *Session) refuseExtended(out *stmt.Outcome, rec *stmt.Record, arrived time.Time, unnamed bool) error {
	s.noteRefusal(out)
	if err := s.switchTo(s.fast, arrived); err != nil {
		return err
	}
	s.skipToSync = true
	s.extendedOn(s.fast)
	name := raiseStatementName
	if unnamed {
		name = ""
	}
	buf := s.scratch[:0]
	var err error
	for _, m := range []wire.Encoder{
		&pgproto3.Close{ObjectType: 'S', Name: name},
		&pgproto3.Parse{Name: name, Query: raiseStatement(out.Err)},
		&pgproto3.Bind{PreparedStatement: name},
		&pgproto3.Execute{},
	} {
		if buf, err = wire.Encode(buf, m); err != nil {
			return err
		}
	}
	s.scratch = buf
	// The record rides on every op of the raise: the first to fail, or to
	// be skipped, settles it (in a failed block the Parse fails first).
	for _, k := range []opKind{opClose, opParse, opBind, opExecute} {
		o := s.newOp(k, arrived)
		o.injected, o.raise, o.raiseCode, o.raiseMsg, o.raiseRec = true, true, out.Err.Code, out.Err.Message, rec
		o.name, o.target = name, 'S'
		if err := s.pushOp(o); err != nil {
			return err
		}
	}
	_, err = s.bw.Write(buf)
	return err
}

// noteRefusal logs and counts a refusal.
func (s *Session) noteRefusal(out *stmt.Outcome) {
	source := out.Source
	if source == "" {
		source = "policy"
	}
	s.Metrics.Refused(source)
	s.Log.Info("statement refused", "sqlstate", out.Err.Code, "reason", out.Err.Message, "source", source)
}

// raiseStatement is a statement that fails with e's SQLSTATE, message,
// detail and hint.
func raiseStatement(e *wire.Error) string {
	code := e.Code
	if len(code) != 5 || strings.Trim(code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" || strings.HasPrefix(code, "00") {
		code = wire.CodeInsufficientPrivilege
	}
	sql := "DO $pgproxy$BEGIN RAISE EXCEPTION USING ERRCODE = '" + code + "', MESSAGE = " + quoteLiteral(e.Message)
	if e.Detail != "" {
		sql += ", DETAIL = " + quoteLiteral(e.Detail)
	}
	if e.Hint != "" {
		sql += ", HINT = " + quoteLiteral(e.Hint)
	}
	return sql + "; END$pgproxy$"
}

// quoteLiteral quotes s as an SQL escape-string literal made of printable
// ASCII only, so it reads the same whatever standard_conforming_strings,
// backslash_quote and client_encoding (even one whose multibyte characters
// contain ASCII bytes) the client set: quotes are doubled, backslashes
// escaped, '$' (which could end the surrounding dollar quote), control
// characters and non-ASCII runes written as escapes; NUL and invalid UTF-8
// are dropped.
func quoteLiteral(s string) string {
	var b strings.Builder
	b.WriteString("E'")
	for _, r := range s {
		switch {
		case r == utf8.RuneError || r == 0:
		case r == '\'':
			b.WriteString("''")
		case r == '\\':
			b.WriteString(`\\`)
		case r == '$' || r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80:
			b.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteString("'")
	return b.String()
}

// cleanRaiseError removes from a raise's ErrorResponse what shows that
// PL/pgSQL raised it (CONTEXT, source position), so the client sees the
// refusal as PostgreSQL would report it for the refused statement. Other
// errors (a statement before the raise failed, 25P02 in a failed block)
// are left alone: it returns nil.
func cleanRaiseError(msg []byte, code, message string, dst []byte) []byte {
	var e pgproto3.ErrorResponse
	if wire.Decode(msg, &e) != nil || e.Code != code || e.Message != message {
		return nil
	}
	e.Where, e.File, e.Line, e.Routine = "", "", 0, ""
	out, err := e.Encode(dst)
	if err != nil {
		return nil
	}
	return out
}

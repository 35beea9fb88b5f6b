package session

import (
	"strings"
	"time"

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

// refuseSimple replaces a refused Query with one that raises the refusal.
func (s *Session) refuseSimple(out *stmt.Outcome, rec *stmt.Record, arrived time.Time) error {
	s.noteRefusal(out)
	o := s.newOp(opQuery, arrived)
	o.raise, o.rec = true, rec
	buf, err := wire.Encode(s.scratch[:0], &pgproto3.Query{String: raiseStatement(out.Err)})
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
func (s *Session) refuseExtended(out *stmt.Outcome, rec *stmt.Record, arrived time.Time) error {
	s.noteRefusal(out)
	s.skipToSync = true
	buf := s.scratch[:0]
	var err error
	for _, m := range []wire.Encoder{
		&pgproto3.Close{ObjectType: 'S', Name: raiseStatementName},
		&pgproto3.Parse{Name: raiseStatementName, Query: raiseStatement(out.Err)},
		&pgproto3.Bind{PreparedStatement: raiseStatementName},
		&pgproto3.Execute{},
	} {
		if buf, err = wire.Encode(buf, m); err != nil {
			return err
		}
	}
	s.scratch = buf
	for _, k := range []opKind{opClose, opParse, opBind} {
		o := s.newOp(k, arrived)
		o.injected = true
		s.pushOp(o)
	}
	o := s.newOp(opExecute, arrived)
	o.injected, o.raise, o.rec = true, true, rec
	s.pushOp(o)
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

// quoteLiteral quotes s as an SQL escape-string literal, read the same way
// whatever standard_conforming_strings the client set; it cannot end the
// surrounding dollar quote (no '$') and carries no NUL.
func quoteLiteral(s string) string {
	s = strings.NewReplacer("$", "", "\x00", "", `\`, `\\`, "'", "''").Replace(s)
	return "E'" + s + "'"
}

// cleanRaiseError removes from a raise's ErrorResponse what shows that
// PL/pgSQL raised it (CONTEXT, source position), so the client sees the
// refusal as PostgreSQL would report it for the refused statement.
func cleanRaiseError(msg []byte, dst []byte) []byte {
	var e pgproto3.ErrorResponse
	if wire.Decode(msg, &e) != nil {
		return nil
	}
	e.Where, e.File, e.Line, e.Routine = "", "", 0, ""
	out, err := e.Encode(dst)
	if err != nil {
		return nil
	}
	return out
}

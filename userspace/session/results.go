package session

import (
	"bytes"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// errResultsUnchecked ends a session whose results a hook must see but
// cannot: the rows are never forwarded unchecked.
var errResultsUnchecked = wire.Fatal(wire.CodeInternalError, "pgproxy cannot check the results of this statement")

// prepareRows finds the result hooks of an Execute at its first row: those
// of the portal's statement (decided at Parse) and of the portal (at Bind),
// given the portal's columns as the server described them.
func (s *Session) prepareRows(o *op) error {
	o.rowsReady = true
	if s.tr == nil || o.injected || !s.anyHooks() {
		return nil // no statement of the session has hooks
	}
	pt := s.tr.portal(o.name)
	if pt == nil {
		s.Log.Warn("rows of an unknown portal", "portal", o.name)
		return s.failClosed()
	}
	hooks := pt.allHooks()
	if len(hooks) == 0 {
		return nil
	}
	if !pt.described {
		s.Log.Warn("rows of a portal whose columns are unknown", "portal", o.name)
		return s.failClosed()
	}
	o.fields = len(pt.fields)
	o.fns = rowFuncs(hooks, pt.fields)
	return nil
}

// anyHooks reports whether some statement of this session asked for its
// results: then rows that cannot be attributed are not let through.
func (s *Session) anyHooks() bool { return s.tr.isHooked() }

// resultsHooked reports whether the results the op is answered with must go
// through a result hook.
func (s *Session) resultsHooked(o *op) bool {
	if o == nil || s.tr == nil {
		return false
	}
	switch o.kind {
	case opQuery:
		return len(o.hooks) > 0
	case opExecute:
		if !s.anyHooks() {
			return false
		}
		pt := s.tr.portal(o.name)
		return pt == nil || len(pt.allHooks()) > 0 // an unknown portal's rows cannot be attributed
	}
	return false
}

// failClosed ends the session rather than forward rows a hook was meant to
// see.
func (s *Session) failClosed() error {
	s.fatal.CompareAndSwap(nil, errResultsUnchecked)
	return errResultsUnchecked
}

// rowFuncs asks each hook for its row function for a result set.
func rowFuncs(hooks []stmt.ResultHook, fields []pgproto3.FieldDescription) []stmt.RowFunc {
	var fns []stmt.RowFunc
	for _, h := range hooks {
		if fn := h.Columns(fields); fn != nil {
			fns = append(fns, fn)
		}
	}
	return fns
}

// filterRow passes one DataRow through the op's row functions.
func (s *Session) filterRow(o *op) error {
	_, msg, err := s.in.Next()
	if err != nil {
		return err
	}
	if err := wire.Decode(msg, &s.row); err != nil {
		return fmt.Errorf("%w: malformed DataRow", wire.ErrProtocol)
	}
	values := s.row.Values
	n := len(values)
	if n != o.fields {
		s.Log.Warn("a row does not have the columns its description announced", "want", o.fields, "got", n)
		return s.failClosed()
	}
	for _, fn := range o.fns {
		if values, err = fn(values); err != nil {
			s.Log.Warn("result hook refused a row", "err", err)
			return s.failClosed()
		}
		if len(values) != n {
			s.Log.Warn("result hook changed the number of columns", "want", n, "got", len(values))
			return s.failClosed()
		}
	}
	out, err := wire.Encode(s.rowBuf[:0], &pgproto3.DataRow{Values: values})
	if err != nil {
		return s.failClosed()
	}
	err = s.write(out)
	// Keep buffers for rows of ordinary size only.
	if s.rowBuf = out; cap(s.rowBuf) > 64<<10 {
		s.rowBuf = nil
	}
	if cap(s.row.Values) > 256 {
		s.row.Values = nil
	}
	return err
}

// describedFields returns the fields of a RowDescription (header
// included), decoded again only when it differs from the last one.
func (s *Session) describedFields(msg []byte) ([]pgproto3.FieldDescription, error) {
	if s.lastDesc != nil && bytes.Equal(msg, s.lastDesc) {
		return s.lastFields, nil
	}
	fields, err := decodeFields(msg)
	if err != nil {
		return nil, err
	}
	if len(msg) <= 4<<10 {
		s.lastDesc, s.lastFields = append(s.lastDesc[:0], msg...), fields
	}
	return fields, nil
}

// decodeFields decodes a RowDescription into fields that outlive the
// reader's buffer.
func decodeFields(msg []byte) ([]pgproto3.FieldDescription, error) {
	var rd pgproto3.RowDescription
	if err := wire.Decode(msg, &rd); err != nil {
		return nil, fmt.Errorf("%w: malformed RowDescription", wire.ErrProtocol)
	}
	fields := make([]pgproto3.FieldDescription, len(rd.Fields))
	for i, f := range rd.Fields {
		f.Name = append([]byte(nil), f.Name...)
		fields[i] = f
	}
	return fields, nil
}

package session

import (
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// auditComment is the comment put before every statement of a token
// session when Deps.QueryComment is set: the session's audited
// application_name, for servers whose statement views do not show
// application_name (Redshift's stv_recents and stl_query show the text).
// Only characters that cannot end or open a comment are kept.
func auditComment(app string) string {
	var b strings.Builder
	b.WriteString("/* application_name=")
	for i := 0; i < len(app); i++ {
		c := app[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("@._:+=-", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteString(" */ ")
	return b.String()
}

// audited returns sql with the session's audit comment before each of its
// statements (stmts, parsed from sql; nil: the text did not parse, and the
// comment goes first), and where the comments start in the result, in
// characters (to move an error's position back; see unaudit). Without a
// comment it returns sql and nil.
func (s *Session) audited(sql string, stmts []sqlparse.Stmt) (string, []int32) {
	if s.comment == "" {
		return sql, nil
	}
	if len(stmts) < 2 {
		return s.comment + sql, []int32{0}
	}
	var b strings.Builder
	b.Grow(len(sql) + len(stmts)*len(s.comment))
	b.WriteString(s.comment)
	starts := []int32{0}
	at, chars := 0, 0
	for _, st := range stmts[1:] {
		if st.Offset <= at || st.Offset > len(sql) {
			continue
		}
		b.WriteString(sql[at:st.Offset])
		chars += utf8.RuneCountInString(sql[at:st.Offset])
		starts = append(starts, int32(chars+len(starts)*len(s.comment)))
		b.WriteString(s.comment)
		at = st.Offset
	}
	b.WriteString(sql[at:])
	return b.String(), starts
}

// commented is sql, a single statement, with the audit comment before it.
func (s *Session) commented(sql string) string {
	text, _ := s.audited(sql, nil)
	return text
}

// unaudit moves the error cursor of an ErrorResponse to
// a statement sent with audit comments starting at starts (characters) back
// to where it is in the client's text; it returns the message to forward.
func (s *Session) unaudit(msg []byte, starts []int32) []byte {
	if len(starts) == 0 {
		return msg
	}
	var e pgproto3.ErrorResponse
	if wire.Decode(msg, &e) != nil || e.Position <= 0 {
		return msg
	}
	p := e.Position - 1 // 0-based, in the text sent
	n := int32(len(s.comment))
	shift := int32(0)
	for _, c := range starts {
		if c > p {
			break
		}
		shift += min(n, p-c)
	}
	e.Position -= shift
	if e.Position < 1 {
		e.Position = 1
	}
	out, err := e.Encode(nil)
	if err != nil {
		return msg
	}
	return out
}

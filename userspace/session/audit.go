package session

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// auditComment is the comment put before every statement of a token
// session when Deps.QueryComment is set: the session's audited
// application_name, for servers whose statement views do not show
// application_name (Redshift's stv_recents and stl_query show the text).
// Letters, digits, @._:+=- and % (application_name's own escapes) are kept;
// every other byte is written %XX, so no name can open or close a comment
// and two names never give the same comment.
func auditComment(app string) string {
	var b strings.Builder
	b.WriteString("/* application_name=")
	for i := 0; i < len(app); i++ {
		c := app[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("@._:+=-%", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	b.WriteString(" */ ")
	return b.String()
}

// firstOnly is the comment starts of a text with one comment, first.
var firstOnly = []int32{0}

// audited returns sql, a simple Query's text, with the session's audit
// comment before each of its statements, and where the comments start in
// the result, in characters (to move an error's position back; see
// unaudit). stmts are the statements parsed from sql (a text the parser
// rejects is refused before it is sent; nil gets one comment). A text with a
// backslash gets one comment, first: with standard_conforming_strings off
// (and on Redshift) the server reads a backslash in a literal as an escape
// where the proxy's parser does not, so a comment put after a semicolon
// could land inside a literal. Without a comment it returns sql and nil.
func (s *Session) audited(sql string, stmts []sqlparse.Stmt) (string, []int32) {
	if s.comment == "" {
		return sql, nil
	}
	var cuts []int
	if len(stmts) > 1 && strings.IndexByte(sql, '\\') < 0 {
		for _, st := range stmts[1:] {
			cuts = append(cuts, st.Offset)
		}
	}
	if len(cuts) == 0 {
		return s.comment + sql, firstOnly
	}
	var b strings.Builder
	b.Grow(len(sql) + (len(cuts)+1)*len(s.comment))
	b.WriteString(s.comment)
	starts := []int32{0}
	at, chars := 0, 0
	for _, cut := range cuts {
		if cut <= at || cut >= len(sql) {
			continue
		}
		b.WriteString(sql[at:cut])
		chars += utf8.RuneCountInString(sql[at:cut])
		starts = append(starts, int32(chars+len(starts)*len(s.comment)))
		b.WriteString(s.comment)
		at = cut
	}
	b.WriteString(sql[at:])
	return b.String(), starts
}

// commented is sql, one statement (a Parse's), with the audit comment
// before it; its comment starts are firstOnly.
func (s *Session) commented(sql string) string {
	if s.comment == "" {
		return sql
	}
	return s.comment + sql
}

// unaudit moves the error cursor of e, an ErrorResponse or NoticeResponse
// answering a text sent with audit comments starting at starts
// (characters), back to where it is in the client's text.
func (s *Session) unaudit(e *pgproto3.ErrorResponse, starts []int32) {
	if len(starts) == 0 || e.Position <= 0 {
		return
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
	e.Position = max(e.Position-shift, 1)
}

// auditStarts returns the comment starts of the text an error or notice
// for op o answers: the Query's own, or firstOnly for the extended
// protocol (every Parse of a commented session has its comment first).
func (s *Session) auditStarts(o *op) []int32 {
	if s.comment == "" || o == nil {
		return nil
	}
	if o.kind == opQuery {
		return o.audit
	}
	return firstOnly
}

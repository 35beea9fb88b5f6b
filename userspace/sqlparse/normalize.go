package sqlparse

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Normalize returns sql with every constant replaced by a parameter
// ($n) and comments removed, so that a stored statement text carries no
// values: "SELECT * FROM t WHERE a = 'x' /* id=7 */" becomes
// "SELECT * FROM t WHERE a = $1".
//
// It runs pg_query's Normalize (PostgreSQL's parser: constants become $n,
// numbered after the parameters the text already has) and then scans the
// result with PostgreSQL's lexer for what Normalize leaves: comments, and the
// constants of statements it does not normalize (the body of PREPARE, the
// arguments of EXECUTE). A text that does not parse is an error: store
// nothing then. It costs a parse and a scan (microseconds); the reporter
// runs it on its writer goroutine, not on the caller's.
func Normalize(sql string) (string, error) {
	norm, err := pg_query.Normalize(sql)
	if err != nil {
		return "", err
	}
	scan, err := pg_query.Scan(norm)
	if err != nil {
		return "", err
	}
	next := 1
	for _, tok := range scan.Tokens {
		if tok.Token == pg_query.Token_PARAM {
			if n, err := strconv.Atoi(norm[tok.Start+1 : tok.End]); err == nil && n >= next {
				next = n + 1
			}
		}
	}
	var b strings.Builder
	b.Grow(len(norm))
	last := 0
	for _, tok := range scan.Tokens {
		start, end := int(tok.Start), int(tok.End)
		switch tok.Token {
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
			b.WriteString(norm[last:start])
			if start > 0 && !isSpace(norm[start-1]) && end < len(norm) && !isSpace(norm[end]) {
				b.WriteByte(' ')
			}
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_ICONST,
			pg_query.Token_FCONST, pg_query.Token_BCONST, pg_query.Token_XCONST:
			b.WriteString(norm[last:start])
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(next))
			next++
		default:
			continue
		}
		last = end
	}
	b.WriteString(norm[last:])
	return strings.TrimSpace(b.String()), nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

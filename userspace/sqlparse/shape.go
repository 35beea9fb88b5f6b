package sqlparse

import (
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Statement shapes.
//
// Applications send the same statement over and over with other constants
// (`... WHERE id = 42`, then `... WHERE id = 43`): in the simple protocol
// every text is new to the parse cache, and parsing it (PostgreSQL's parser
// through cgo, then decoding the tree) costs tens of microseconds. A shape
// key is the text with its plain literals (numbers, standard '...' strings)
// replaced by markers, found by a small scanner that follows PostgreSQL's
// lexical rules for what it accepts and gives up on anything it is not sure
// of (dollar quotes, E'' and other prefixed strings, numbers glued to other
// characters, NUL bytes). Two texts with one key differ only in the values
// of plain literals, so they parse to trees of the same structure: the same
// statement kinds, names, tables and operators, constants aside.
//
// A text whose key matches a parsed template is answered without parsing
// when every question the proxy asks of it without constants has the same
// answer for every text of the shape: one statement, a SELECT, INSERT,
// UPDATE or DELETE, no set_config (its setting name is a constant), every
// literal a constant of the tree (A_Const: the fingerprint ignores its
// value). Its tree is parsed on first use of Tree; Fingerprint, Statements
// (the template's node, the text's own text), session effects and
// ShapeTree come from the template. Whoever reads constants' values from
// ShapeTree must know the shape does not depend on them (the analysis
// checks: analysis.constantSensitive).

// The markers of literals in a shape key (NUL never occurs in a text that
// gets a key). Integers that fit in 32 bits are told from other numbers:
// the grammar takes only those where it wants an integer (a FETCH count,
// an array bound).
const (
	intMark = "\x00i"
	numMark = "\x00n"
	strMark = "\x00s"
)

// shape is what the scanner reads of a text.
type shape struct {
	key  string // the text with each literal replaced by its marker
	lits []int  // where each literal starts (when asked for)
	semi int    // the last semicolon outside comments, quotes and identifiers (-1: none)
}

// stmtText is the statement text of a one-statement text of an eligible
// shape: the text without a final semicolon and what follows it (space and
// comments), trimmed, as splitStatements cuts it.
func (sh shape) stmtText(sql string) string {
	end := len(sql)
	if sh.semi >= 0 {
		end = sh.semi
	}
	return strings.TrimSpace(sql[:end])
}

// shapeKey returns the shape key of sql, or false when the scanner cannot
// be sure of the text's literals (then the text is parsed as usual).
func shapeKey(sql string) (string, bool) {
	sh, ok := scanShape(sql, false)
	return sh.key, ok
}

// scanShape reads the shape of sql, or returns false (see shapeKey); with
// offsets, it also notes where each literal starts.
func scanShape(sql string, offsets bool) (shape, bool) {
	var buf [256]byte
	key, sh, ok := appendShape(buf[:0], sql, offsets)
	if ok {
		sh.key = string(key)
	}
	return sh, ok
}

// appendShape is scanShape with the key appended to dst and returned
// rather than set in the shape (a caller that only looks the key up in a
// map allocates nothing). What lies between literals is copied to the key
// in one piece.
func appendShape(dst []byte, sql string, offsets bool) ([]byte, shape, bool) {
	if !utf8.ValidString(sql) {
		return dst, shape{}, false // the parser rejects it, whatever the literals
	}
	kept := 0 // sql[kept:i] is still to be copied to the key
	lits := 0
	sh := shape{semi: -1}
	i := 0
	n := len(sql)
	for i < n {
		c := sql[i]
		if isIdentStart(c) { // a keyword or name: the commonest bytes first
			j := i + 1
			for j < n && isIdentByte(sql[j]) {
				j++
			}
			i = j
			continue
		}
		switch {
		case c == 0:
			return dst, shape{}, false
		case c == '-' && i+1 < n && sql[i+1] == '-': // comment to end of line, kept
			j := i + 2
			for j < n && sql[j] != '\n' && sql[j] != '\r' {
				if sql[j] == 0 {
					return dst, shape{}, false
				}
				j++
			}
			i = j
		case c == '/' && i+1 < n && sql[i+1] == '*': // nested block comment, kept
			depth, j := 1, i+2
			for j < n && depth > 0 {
				switch {
				case sql[j] == 0:
					return dst, shape{}, false
				case sql[j] == '/' && j+1 < n && sql[j+1] == '*':
					depth++
					j += 2
				case sql[j] == '*' && j+1 < n && sql[j+1] == '/':
					depth--
					j += 2
				default:
					j++
				}
			}
			if depth > 0 {
				return dst, shape{}, false
			}
			i = j
		case c == '"': // quoted identifier, kept
			j, ok := closingQuote(sql, i)
			if !ok {
				return dst, shape{}, false
			}
			i = j + 1
		case c == '\'':
			if i > 0 && isIdentByte(sql[i-1]) {
				return dst, shape{}, false // E'', B'', X'', N'', U&'' ...: other lexical rules
			}
			if i > 0 && sql[i-1] == '&' {
				return dst, shape{}, false // U&'...' written with the & glued on
			}
			j, ok := closingQuote(sql, i)
			if !ok {
				return dst, shape{}, false
			}
			dst, kept = markLiteral(dst, sql, kept, i, j+1, strMark)
			lits++
			if offsets {
				sh.lits = append(sh.lits, i)
			}
			i = j + 1
			if i < n && gluedByte(sql[i]) {
				return dst, shape{}, false
			}
		case c == '$':
			if i+1 < n && isDigit(sql[i+1]) && (i == 0 || !isIdentByte(sql[i-1])) { // $n parameter, kept
				j := i + 1
				for j < n && isDigit(sql[j]) {
					j++
				}
				if j < n && isIdentByte(sql[j]) {
					return dst, shape{}, false
				}
				i = j
				continue
			}
			if i == 0 || !isIdentByte(sql[i-1]) {
				return dst, shape{}, false // a dollar quote, or something else the scanner does not know
			}
			i++
		case isDigit(c) || (c == '.' && i+1 < n && isDigit(sql[i+1])):
			if i > 0 && gluedByte(sql[i-1]) {
				return dst, shape{}, false
			}
			j := i
			for j < n && isDigit(sql[j]) {
				j++
			}
			integer := j > i
			if j < n && sql[j] == '.' {
				integer = false
				j++
				for j < n && isDigit(sql[j]) {
					j++
				}
			}
			if j < n && (sql[j] == 'e' || sql[j] == 'E') {
				j++
				if j < n && (sql[j] == '+' || sql[j] == '-') {
					j++
				}
				if j >= n || !isDigit(sql[j]) {
					return dst, shape{}, false
				}
				integer = false
				for j < n && isDigit(sql[j]) {
					j++
				}
			}
			if j < n && gluedByte(sql[j]) {
				return dst, shape{}, false
			}
			if integer && fitsInt32(sql[i:j]) {
				dst, kept = markLiteral(dst, sql, kept, i, j, intMark)
			} else {
				dst, kept = markLiteral(dst, sql, kept, i, j, numMark)
			}
			lits++
			if offsets {
				sh.lits = append(sh.lits, i)
			}
			i = j
		default:
			if c == ';' {
				sh.semi = i
			}
			i++
		}
	}
	if lits == 0 {
		return dst, shape{}, false // nothing to share: the text is its own shape
	}
	return append(dst, sql[kept:]...), sh, true
}

// closingQuote returns the offset of the quote that closes the one at
// sql[i] (a doubled quote stands for itself), or false when the text ends
// first or holds a NUL byte.
func closingQuote(sql string, i int) (int, bool) {
	q := sql[i]
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case 0:
			return 0, false
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j, true
		}
	}
	return 0, false
}

// markLiteral appends sql[kept:i] to the key, then the marker of the
// literal sql[i:j]; it returns the key and where the text still to be
// copied starts.
func markLiteral(dst []byte, sql string, kept, i, j int, m string) ([]byte, int) {
	dst = append(dst, sql[kept:i]...)
	return append(dst, m...), j
}

// fitsInt32 reports whether a string of digits is at most 2147483647.
func fitsInt32(d string) bool {
	d = strings.TrimLeft(d, "0")
	return len(d) < 10 || len(d) == 10 && d <= "2147483647"
}

// gluedByte: a literal next to one of these is refused (the lexer's reading
// of such a text can depend on the literal's value).
func gluedByte(c byte) bool { return isIdentByte(c) || c == '.' || c == '\'' || c == '"' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool { return byteClass[c]&identStart != 0 }

func isIdentByte(c byte) bool { return byteClass[c]&identByte != 0 }

// byteClass holds, per byte, whether it starts an identifier or keyword
// (a letter, _, or any byte of a multibyte character) and whether it
// continues one (those, digits and $).
var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '_' || b >= 0x80 {
			t[c] |= identStart | identByte
		}
		if isDigit(b) || b == '$' {
			t[c] |= identByte
		}
	}
	return t
}()

const (
	identStart = 1 << iota
	identByte
)

// shapeEligible reports whether texts of p's shape can be answered from p
// (see the package comment on shapes): one statement of a plain DML kind,
// no set_config, no constant the analysis reads, and a statement text the
// shape can reproduce.
func shapeEligible(p *Parsed) bool {
	if p.Err != nil || p.tree == nil || len(p.tree.Stmts) != 1 {
		return false
	}
	node := p.tree.Stmts[0].Stmt
	switch node.Node.(type) {
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt:
	default:
		return false
	}
	sh, shaped := scanShape(p.sql, true)
	if !shaped {
		return false
	}
	consts := map[int32]bool{}
	ok := true
	Inspect(node, func(m proto.Message) bool {
		switch x := m.(type) {
		case *pg_query.A_Const:
			consts[x.Location] = true
		case *pg_query.FuncCall:
			if isFunc(x, "set_config") {
				ok = false
			}
		}
		return ok
	})
	if !ok {
		return false
	}
	// Every literal must be a constant of the tree (A_Const), whose value
	// the fingerprint ignores and nothing else of the tree depends on; not
	// a number the grammar keeps in a field (a FETCH count, an array
	// bound), nor one folded into another node (a negated number).
	for _, at := range sh.lits {
		if !consts[int32(at)] {
			return false
		}
	}
	st := splitStatements(p)
	return len(st) == 1 && st[0].Text == sh.stmtText(p.sql)
}

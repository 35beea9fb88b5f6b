package session

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

func TestAuditComment(t *testing.T) {
	for app, want := range map[string]string{
		"jwt:alice@example.com":        "/* application_name=jwt:alice@example.com */ ",
		"jwt:eve*/ DROP TABLE t; /*":   "/* application_name=jwt:eve%2A%2F%20DROP%20TABLE%20t%3B%20%2F%2A */ ",
		"jwt:zo%C3%AB+x=y-z_w.v":       "/* application_name=jwt:zo%C3%AB+x=y-z_w.v */ ",
		"jwt:a\nb\x00c\\d'e\"f$g;h--i": "/* application_name=jwt:a%0Ab%00c%5Cd%27e%22f%24g%3Bh--i */ ",
		"jwt:o'neil@x":                 "/* application_name=jwt:o%27neil@x */ ",
		"jwt:o_neil@x":                 "/* application_name=jwt:o_neil@x */ ",
	} {
		got := auditComment(app)
		if got != want {
			t.Errorf("auditComment(%q) = %q, want %q", app, got, want)
		}
		if strings.Count(got, "*/") != 1 || strings.Count(got, "/*") != 1 {
			t.Errorf("auditComment(%q) = %q opens or closes a comment inside", app, got)
		}
	}
}

// TestAudited checks the text sent and that every error position in it
// maps back to the same character of the client's text.
func TestAudited(t *testing.T) {
	parser := sqlparse.NewParser(16)
	s := &Session{comment: auditComment("jwt:a")}
	for _, tc := range []struct {
		sql      string
		comments int
	}{
		{"SELECT 1", 1},
		{"", 1},
		{"SELECT 'é'; SELECT 'ü', x", 2},
		{"  SELECT 1 ;\n\tSELECT 2;SELECT 'ß' ; ", 3},
		{"/* lead */ SELECT 1; -- tail\nSELECT 2", 2},
		{"SELECT '-- ;'; SELECT $$;$$", 2},
		// Does not parse (refused before it is sent): one comment first.
		{"SELECT TOP 1 1; DELETE FROM t", 1},
		// A backslash: standard_conforming_strings=off would read 'x\';
		// as an escaped quote, so only the leading comment.
		{"INSERT INTO t VALUES ('x\\';SELECT 1 --')", 1},
		{"SELECT 1; SELECT E'\\n'", 1},
	} {
		sql := tc.sql
		stmts := parser.Parse(sql).Statements()
		sent, starts := s.audited(sql, stmts)
		want := tc.comments
		if got := strings.Count(sent, s.comment); got != want || len(starts) != want {
			t.Errorf("%q: sent %q with %d comments (starts %v), want %d", sql, sent, got, starts, want)
		}
		if strings.ReplaceAll(sent, s.comment, "") != sql {
			t.Errorf("%q: sent %q is not the client's text with comments", sql, sent)
		}
		// Every character of the client's text, found in the text sent,
		// maps back to its own position.
		client, sentRunes := []rune(sql), []rune(sent)
		ci := 0
		for si := 0; si < len(sentRunes) && ci < len(client); si++ {
			if inComment(si, starts, len([]rune(s.comment))) {
				continue
			}
			msg, _ := (&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42703", Message: "m", Position: int32(si + 1)}).Encode(nil)
			var e pgproto3.ErrorResponse
			if err := wire.Decode(s.filterError(&op{kind: opQuery, audit: starts}, msg), &e); err != nil {
				t.Fatal(err)
			}
			if e.Position != int32(ci+1) {
				t.Fatalf("%q: position %d of the text sent maps to %d, want %d", sql, si+1, e.Position, ci+1)
			}
			ci++
		}
		if ci != len(client) {
			t.Errorf("%q: %d of %d characters mapped", sql, ci, len(client))
		}
	}
	if sent, starts := (&Session{}).audited("SELECT 1", nil); sent != "SELECT 1" || starts != nil {
		t.Errorf("without a comment: %q %v", sent, starts)
	}
}

func inComment(i int, starts []int32, n int) bool {
	for _, c := range starts {
		if i >= int(c) && i < int(c)+n {
			return true
		}
	}
	return false
}

// TestAuditStarts: an error to a Query is mapped with the Query's own
// comment starts, one to any extended-protocol message with the Parse's
// single leading comment, and nothing is mapped without a comment.
func TestAuditStarts(t *testing.T) {
	s := &Session{comment: auditComment("jwt:a")}
	q := &op{kind: opQuery, audit: []int32{0, 40}}
	if got := s.auditStarts(q); len(got) != 2 || got[1] != 40 {
		t.Errorf("Query: %v", got)
	}
	for _, k := range []opKind{opParse, opBind, opExecute, opDescribe} {
		if got := s.auditStarts(&op{kind: k}); len(got) != 1 || got[0] != 0 {
			t.Errorf("kind %v: %v", k, got)
		}
	}
	if got := (&Session{}).auditStarts(q); got != nil {
		t.Errorf("without a comment: %v", got)
	}
}

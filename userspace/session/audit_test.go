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
		"jwt:eve*/ DROP TABLE t; /*":   "/* application_name=jwt:eve___DROP_TABLE_t____ */ ",
		"jwt:zo%C3%AB+x=y-z_w.v":       "/* application_name=jwt:zo_C3_AB+x=y-z_w.v */ ",
		"jwt:a\nb\x00c\\d'e\"f$g;h--i": "/* application_name=jwt:a_b_c_d_e_f_g_h--i */ ",
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
	for _, sql := range []string{
		"SELECT 1",
		"SELECT 'é'; SELECT 'ü', x",
		"  SELECT 1 ;\n\tSELECT 2;SELECT 'ß' ; ",
		"/* lead */ SELECT 1; -- tail\nSELECT 2",
		"SELEKT nonsense; SELECT 1", // does not parse: one comment first
	} {
		stmts := parser.Parse(sql).Statements()
		sent, starts := s.audited(sql, stmts)
		want := max(len(stmts), 1)
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
			if err := wire.Decode(s.unaudit(msg, starts), &e); err != nil {
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

package sqlparse

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		in, want string
		secrets  []string // must not survive
		// unparsable: the result is not valid SQL (a parameter where the
		// grammar wants a literal), as with pg_stat_statements.
		unparsable bool
	}{
		{"SELECT * FROM t WHERE a = 'secret' AND b = 42", "SELECT * FROM t WHERE a = $1 AND b = $2", []string{"secret", "42"}, false},
		{"SELECT * FROM t WHERE a = 'x' /* user=alice card=4111 */ -- trailing 99", "SELECT * FROM t WHERE a = $1", []string{"alice", "4111", "99"}, false},
		{"SELECT/* tag 7 */1", "SELECT $1", []string{"tag", "7"}, false},
		{"-- head 5\nSELECT 'v'", "SELECT $1", []string{"head", "v'"}, false},
		{"CREATE USER bob PASSWORD 'hunter2'", "CREATE USER bob PASSWORD $1", []string{"hunter2"}, false},
		{"ALTER ROLE bob PASSWORD 'pw'", "ALTER ROLE bob PASSWORD $1", []string{"pw"}, false},
		{"SET app.secret = 'abc'", "SET app.secret = $1", []string{"abc"}, false},
		{"SELECT $1, 'x', $3", "SELECT $1, $4, $3", []string{"'x'"}, false},
		{"SELECT interval '1 day', B'101', X'ff', 1.5e3, -7, true, NULL", "SELECT interval $1, $2, $3, $4, $5, $6, $7", []string{"day", "101", "ff", "1.5e3", "-", "true", "NULL"}, false},
		{"INSERT INTO t VALUES (1,'a'),(2,'b')", "INSERT INTO t VALUES ($1,$2),($3,$4)", []string{"'a'", "'b'"}, false},
		{"DO $$ BEGIN PERFORM 'secret'; END $$", "DO $1", []string{"secret"}, true},
		{"SELECT E'\\x41', U&'d\\0061t'", "SELECT $1, $2", []string{"x41", "0061"}, false},
		{"SELECT 1; SELECT 'two'", "SELECT $1; SELECT $2", []string{"two"}, false},
		{"NOTIFY foo, 'payload'", "NOTIFY foo, $1", []string{"payload"}, true},
		{"CALL p('v')", "CALL p($1)", []string{"'v'"}, false},
		{"SELECT ARRAY['a','b'], '{1,2}'::int[]", "SELECT ARRAY[$1,$2], $3::int[]", []string{"'a'", "{1,2}"}, false},
		// Normalize leaves the body of PREPARE and the arguments of EXECUTE.
		{"PREPARE p AS SELECT 'x' || $1; EXECUTE p('y')", "PREPARE p AS SELECT $2 || $1; EXECUTE p($3)", []string{"'x'", "'y'"}, false},
		{"PREPARE q(int) AS SELECT * FROM t WHERE id = 5", "PREPARE q(int) AS SELECT * FROM t WHERE id = $1", []string{"5"}, false},
		{"COPY t FROM '/srv/secret.csv'", "COPY t FROM $1", []string{"secret.csv"}, true},
		{"SELECT 'zoë' AS name", "SELECT $1 AS name", []string{"zoë"}, false},
		{"SELECT * FROM t", "SELECT * FROM t", nil, false},
	}
	for _, c := range cases {
		got, err := Normalize(c.in)
		if err != nil {
			t.Errorf("Normalize(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Normalize(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		for _, s := range c.secrets {
			if strings.Contains(got, s) {
				t.Errorf("Normalize(%q) = %q keeps %q", c.in, got, s)
			}
		}
		if _, err := pg_query.Parse(got); err != nil && !c.unparsable {
			t.Errorf("Normalize(%q) = %q does not parse: %v", c.in, got, err)
		}
	}
}

func TestNormalizeSyntaxError(t *testing.T) {
	for _, in := range []string{"SELEC 'secret'", "SELECT 'unterminated", ""} {
		got, err := Normalize(in)
		if in == "" {
			// An empty text parses to nothing; there is nothing to leak.
			if err != nil || got != "" {
				t.Errorf("Normalize(%q) = %q, %v", in, got, err)
			}
			continue
		}
		if err == nil || got != "" {
			t.Errorf("Normalize(%q) = %q, %v; want an error and no text", in, got, err)
		}
	}
}

package clients

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// TestPsql drives psql through the proxy: single commands, several statements in one -c (one
// simple Query message with many results), a script, and \copy both ways.
func TestPsql(t *testing.T) {
	harness.Require(t, "psql")
	pg, proxy := startProxy(t, nil)
	dsn := proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, "application_name=clients-psql")
	psql := func(t *testing.T, args ...string) string {
		return run(t, time.Minute, nil, "psql", append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn}, args...)...)
	}

	t.Run("command", func(t *testing.T) {
		if got := strings.TrimSpace(psql(t, "-c", "SELECT current_user || ' ' || 6 * 7")); got != "scram_user 42" {
			t.Errorf("got %q", got)
		}
	})

	t.Run("multi-statement", func(t *testing.T) {
		got := psql(t, "-c", "CREATE TEMP TABLE t (i int); INSERT INTO t SELECT generate_series(1, 10); SELECT sum(i) FROM t; SELECT count(*) FROM t")
		if lines := strings.Fields(got); len(lines) != 2 || lines[0] != "55" || lines[1] != "10" {
			t.Errorf("got %q, want the results 55 and 10", got)
		}
	})

	t.Run("script with an error stops with ON_ERROR_STOP", func(t *testing.T) {
		dir := t.TempDir()
		script := filepath.Join(dir, "script.sql")
		if err := os.WriteFile(script, []byte("SELECT 1;\nSELECT 1/0;\nSELECT 3;\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runErr(t, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", script)
		if err == nil || !strings.Contains(out, "division by zero") || strings.Contains(out, "\n3\n") {
			t.Errorf("psql -f with a failing statement: %v\n%s", err, out)
		}
	})

	t.Run("copy both ways", func(t *testing.T) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in.csv")
		out := filepath.Join(dir, "out.csv")
		var b strings.Builder
		for i := 1; i <= 20000; i++ {
			fmt.Fprintf(&b, "%d,\"name, %d\",%d.5\n", i, i, i)
		}
		if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		psql(t, "-c", "DROP TABLE IF EXISTS clients_psql_copy; CREATE TABLE clients_psql_copy (id int PRIMARY KEY, name text, amount numeric)")
		psql(t, "-c", fmt.Sprintf(`\copy clients_psql_copy FROM '%s' WITH (FORMAT csv)`, in))
		if got := superuserValue(t, pg, "SELECT count(*) || ' ' || sum(amount) FROM clients_psql_copy"); got != "20000 200020000.0" {
			t.Errorf("after \\copy FROM: %s", got)
		}
		psql(t, "-c", fmt.Sprintf(`\copy (SELECT * FROM clients_psql_copy ORDER BY id) TO '%s' WITH (FORMAT csv)`, out))
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != b.String() {
			t.Errorf("\\copy TO wrote %d bytes that differ from the %d loaded", len(got), b.Len())
		}
	})
}

package clients

import (
	"testing"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// TestNodePostgres runs node-postgres (the npm package pg) through the proxy: its simple and
// parameterised (extended protocol) queries, and a server error.
func TestNodePostgres(t *testing.T) {
	_, proxy := startProxy(t, nil)
	res := harness.NodeQuery(t, proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""), "")
	if !res.OK || len(res.Results) != 2 {
		t.Fatalf("built-in queries: %s", res)
	}
	if r := res.Results[0]; len(r.Rows) != 1 || r.Rows[0]["one"] != float64(1) || r.Rows[0]["usr"] != harness.ScramUser {
		t.Errorf("simple query: %s", res)
	}
	if r := res.Results[1]; len(r.Rows) != 1 || r.Rows[0]["next"] != float64(42) || r.Rows[0]["echo"] != "hello" {
		t.Errorf("parameterised query: %s", res)
	}

	res = harness.NodeQuery(t, proxy.DSN(harness.ClearUser, harness.ClearPass, harness.TestDB, ""),
		"SELECT g AS n, $1::text || g AS label FROM generate_series(1, $2::int) g", "row-", 1000)
	if !res.OK || res.Results[0].RowCount != 1000 || res.Results[0].Rows[999]["label"] != "row-1000" {
		t.Errorf("parameterised 1000 rows: ok=%v error=%v", res.OK, res.Error)
	}

	res = harness.NodeQuery(t, proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""), "SELECT 1/0")
	if res.OK || res.Error == nil || res.Error.Code != "22012" {
		t.Errorf("division by zero: %s", res)
	}

	res = harness.NodeQuery(t, proxy.DSN(harness.ScramUser, "wrong", harness.TestDB, ""), "SELECT 1")
	if res.OK || res.Error == nil || res.Error.Code != "28P01" {
		t.Errorf("wrong password: %s", res)
	}
}

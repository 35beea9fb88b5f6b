package harness

import "testing"

func TestNodeQuery(t *testing.T) {
	t.Parallel()
	pg := SharedPostgres(t)
	res := NodeQuery(t, pg.DSN(ScramUser, ScramPass, TestDB), "")
	if !res.OK || len(res.Results) != 2 || res.Results[1].Rows[0]["next"] != float64(42) {
		t.Errorf("built-in queries: %s", res)
	}
	res = NodeQuery(t, pg.DSN(MD5User, MD5Pass, TestDB), "SELECT $1::int * 2 AS d", 21)
	if !res.OK || res.Results[0].Rows[0]["d"] != float64(42) {
		t.Errorf("parameterised: %s", res)
	}
	res = NodeQuery(t, pg.DSN(ClearUser, "wrong", TestDB), "SELECT 1")
	if res.OK || res.Error == nil || res.Error.Code != "28P01" {
		t.Errorf("wrong password: %s", res)
	}
}

package metadata_test

import (
	"errors"
	"testing"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/metadata"
)

// TestRedshiftFacts reads facts from a stand-in svv_table_info (a view of
// Redshift's column names on PostgreSQL): the named schema, or public's
// table first for an unqualified name.
func TestRedshiftFacts(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, `
		DROP SCHEMA IF EXISTS meta_rs CASCADE; CREATE SCHEMA meta_rs;
		CREATE TABLE meta_rs.svv_table_info (database text, schema text, table_id int, "table" text, diststyle text,
			sortkey1 text, size bigint, unsorted numeric(5,2), tbl_rows numeric(38,0), skew_rows numeric(19,2));
		INSERT INTO meta_rs.svv_table_info VALUES
			('dev', 'public', 100, 'sales', 'KEY(listid)', 'saletime', 42, 3.5, 172456, 1.25),
			('dev', 'stage', 101, 'sales', 'EVEN', NULL, 2, NULL, 10, NULL);
		GRANT USAGE ON SCHEMA meta_rs TO PUBLIC; GRANT SELECT ON meta_rs.svv_table_info TO PUBLIC;`)
	pool, _ := newPool(t, pg, map[string]string{"search_path": "meta_rs"})
	c := metadata.New(pool, metadata.Options{Redshift: true})
	tab := lookup(t, c, "", "sales")
	rs := tab.Redshift
	if tab.Schema != "public" || tab.Rows != 172456 || tab.Bytes != 42<<20 || rs == nil || rs.DistStyle != "KEY(listid)" ||
		rs.SortKey1 != "saletime" || rs.SkewRows != 1.25 || rs.Unsorted != 3.5 || !tab.Big(100000) {
		t.Fatalf("public.sales: %+v %+v", tab, rs)
	}
	if stage := lookup(t, c, "stage", "sales"); stage.Rows != 10 || stage.Redshift.SortKey1 != "" || stage.Redshift.SkewRows != 0 {
		t.Fatalf("stage.sales: %+v %+v", stage, stage.Redshift)
	}
	var nf *metadata.NotFoundError
	if _, err := c.Lookup(t.Context(), "public", "nothere"); !errors.As(err, &nf) {
		t.Fatalf("a missing table: %v", err)
	}
}

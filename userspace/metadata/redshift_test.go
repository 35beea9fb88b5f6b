package metadata_test

import (
	"errors"
	"strings"
	"testing"
	"time"

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

// TestRedshiftAlerts reads a stand-in stl_alert_event_log joined with
// stl_scan (Redshift's column names on PostgreSQL): the alerts of the last
// 7 days of the queries that scanned the table, grouped by trimmed event
// and solution, most frequent first, at most 5; not older ones, not other
// tables', not those of steps that scanned no table.
func TestRedshiftAlerts(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, `
		DROP SCHEMA IF EXISTS meta_rs_alerts CASCADE; CREATE SCHEMA meta_rs_alerts;
		CREATE TABLE meta_rs_alerts.stl_scan (userid int, query int, slice int, segment int, step int, starttime timestamp,
			endtime timestamp, rows bigint, bytes bigint, tbl int, perm_table_name char(136));
		CREATE TABLE meta_rs_alerts.stl_alert_event_log (userid int, query int, slice int, segment int, step int, pid int,
			xid bigint, event char(1024), solution char(1024), event_time timestamp);
		INSERT INTO meta_rs_alerts.stl_scan VALUES
			(100, 1, 0, 0, 2, '2025-01-08 10:00', '2025-01-08 10:01', 10, 100, 100, 'sales'),
			(100, 1, 1, 0, 2, '2025-01-08 10:00', '2025-01-08 10:01', 10, 100, 100, 'sales'),
			(100, 2, 0, 1, 0, '2025-01-09 09:30', '2025-01-09 09:31', 10, 100, 100, 'sales'),
			(100, 3, 0, 0, 0, '2025-01-07 08:00', '2025-01-07 08:01', 10, 100, 100, 'sales'),
			(100, 4, 0, 0, 0, '2025-01-02 08:00', '2025-01-02 08:01', 10, 100, 100, 'sales'),
			(100, 5, 0, 0, 0, '2025-01-09 08:00', '2025-01-09 08:01', 10, 100, 101, 'listing'),
			(100, 6, 0, 0, 0, '2025-01-09 07:00', '2025-01-09 07:01', 10, 100, 100, 'sales');
		INSERT INTO meta_rs_alerts.stl_scan SELECT 100, 10 + i, 0, 0, 0, '2025-01-09', '2025-01-09', 1, 1, 102, 'many' FROM generate_series(1, 7) i;
		INSERT INTO meta_rs_alerts.stl_alert_event_log VALUES
			(100, 1, 0, 0, 2, 1, 1, 'Missing query planner statistics', 'Run the ANALYZE command', '2025-01-08 10:00'),
			(100, 1, 1, 0, 2, 1, 1, ' Missing query planner statistics ', 'Run the ANALYZE command', '2025-01-08 10:00'),
			(100, 2, 0, 1, 0, 1, 2, 'Missing query planner statistics', 'Run the ANALYZE command', '2025-01-09 09:30'),
			(100, 3, 0, 0, 0, 1, 3, 'Scanned a large number of deleted rows', 'Run the VACUUM command to reclaim deleted space', '2025-01-07 08:00'),
			(100, 4, 0, 0, 0, 1, 4, 'Nested Loop Join in the query plan', 'Review the join predicates', '2025-01-02 08:00'),
			(100, 5, 0, 0, 0, 1, 5, 'Very selective query filter', 'Review the choice of sort key', '2025-01-09 08:00'),
			(100, 1, 0, 0, 9, 1, 1, 'Distributed a large number of rows across the network', 'Review the choice of distribution key', '2025-01-08 10:00'),
			(100, 6, 0, 0, 0, 1, 6, repeat('x', 400), 'y', '2025-01-09 07:00');
		INSERT INTO meta_rs_alerts.stl_alert_event_log SELECT 100, 10 + i, 0, 0, 0, 1, 10 + i, 'event ' || i, 'solution ' || i, '2025-01-09'
			FROM generate_series(1, 7) i;
		GRANT USAGE ON SCHEMA meta_rs_alerts TO PUBLIC; GRANT SELECT ON ALL TABLES IN SCHEMA meta_rs_alerts TO PUBLIC;`)
	pool, _ := newPool(t, pg, map[string]string{"search_path": "meta_rs_alerts"})
	now := func() time.Time { return time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC) }
	c := metadata.New(pool, metadata.Options{Redshift: true, Now: now})
	alerts, err := c.RedshiftAlerts(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []metadata.Alert{
		{Event: "Missing query planner statistics", Solution: "Run the ANALYZE command", Count: 3, Last: time.Date(2025, 1, 9, 9, 30, 0, 0, time.UTC)},
		{Event: strings.Repeat("x", metadata.MaxAlertText), Solution: "y", Count: 1, Last: time.Date(2025, 1, 9, 7, 0, 0, 0, time.UTC)},
		{Event: "Scanned a large number of deleted rows", Solution: "Run the VACUUM command to reclaim deleted space", Count: 1, Last: time.Date(2025, 1, 7, 8, 0, 0, 0, time.UTC)},
	}
	if len(alerts) != len(want) {
		t.Fatalf("alerts of table 100: %+v", alerts)
	}
	for i, a := range alerts {
		if a.Event != want[i].Event || a.Solution != want[i].Solution || a.Count != want[i].Count || !a.Last.Equal(want[i].Last) {
			t.Errorf("alert %d: %+v, want %+v", i, a, want[i])
		}
	}
	if many, err := c.RedshiftAlerts(t.Context(), 102); err != nil || len(many) != metadata.MaxAlerts {
		t.Errorf("table 102: %d alerts (%v), want %d", len(many), err, metadata.MaxAlerts)
	}
	if none, err := c.RedshiftAlerts(t.Context(), 103); err != nil || len(none) != 0 {
		t.Errorf("table 103: %+v %v", none, err)
	}
	if _, err := metadata.New(pool, metadata.Options{}).RedshiftAlerts(t.Context(), 100); err == nil {
		t.Error("RedshiftAlerts on a PostgreSQL cache: no error")
	}
}

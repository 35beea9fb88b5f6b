package analysis

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/llm"
	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

func toolNames(task llm.Task) []string {
	var names []string
	for _, t := range task.Tools {
		names = append(names, t.Name)
	}
	return names
}

// TestModelAlertEventsTool: the alert_events tool is the Redshift
// flavour's only, answers about the statement's tables only, and shows a
// failed read of the alert log as a short generic error.
func TestModelAlertEventsTool(t *testing.T) {
	m := testTier(t, false)
	req := Request{Database: "dev", Parsed: sqlparse.NewParser(4).Parse("SELECT * FROM sales WHERE note = 'x'")}
	for _, flavor := range []string{"", FlavorPostgres} {
		task := m.task(&Backend{Flavor: flavor}, req, Decision{})
		if _, ok := task.Funcs["alert_events"]; ok || slices.Contains(toolNames(task), "alert_events") {
			t.Errorf("flavour %q offers alert_events: %v", flavor, toolNames(task))
		}
	}
	if task := m.task(nil, req, Decision{}); slices.Contains(toolNames(task), "alert_events") {
		t.Errorf("no backend: alert_events offered")
	}

	// The shared cluster with a stand-in svv_table_info and no stl_ tables:
	// the read of the alert log fails.
	pg := harness.SharedPostgres(t)
	if err := pg.SuperuserExec(`DROP SCHEMA IF EXISTS model_rs CASCADE; CREATE SCHEMA model_rs;
		CREATE TABLE model_rs.svv_table_info (schema text, table_id int, "table" text, diststyle text, sortkey1 text,
			size bigint, unsorted numeric(5,2), tbl_rows numeric(38,0), skew_rows numeric(19,2));
		INSERT INTO model_rs.svv_table_info VALUES ('public', 100, 'sales', 'EVEN', NULL, 1, 0, 10, 1);
		GRANT USAGE ON SCHEMA model_rs TO PUBLIC; GRANT SELECT ON model_rs.svv_table_info TO PUBLIC;`); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = "model_rs"
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	be := &Backend{Flavor: FlavorRedshift, Facts: metadata.New(pool, metadata.Options{Redshift: true})}
	task := m.task(be, req, Decision{})
	if names := toolNames(task); !slices.Contains(names, "alert_events") || task.Funcs["alert_events"] == nil {
		t.Fatalf("redshift: tools %v", names)
	}
	call := func(in string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return task.Funcs["alert_events"](ctx, json.RawMessage(in))
	}
	if _, err := call(`{"table": "listing"}`); err == nil || !strings.Contains(err.Error(), "does not read") {
		t.Errorf("a table the statement does not read: %v", err)
	}
	if _, err := call(`{}`); err == nil || !strings.Contains(err.Error(), "give table") {
		t.Errorf("no table: %v", err)
	}
	if out, err := call(`{"table": "sales"}`); err == nil || err.Error() != "the alert log (stl_alert_event_log) could not be read" {
		t.Errorf("no alert log: %q %v", out, err)
	}
}

func TestDescribeAlerts(t *testing.T) {
	tab := &metadata.Table{Schema: "public", Name: "sales"}
	if got := describeAlerts(tab, nil); got != "no alerts in the last 7 days for public.sales" {
		t.Errorf("none: %q", got)
	}
	got := describeAlerts(tab, []metadata.Alert{
		{Event: "Missing query planner statistics", Solution: "Run the ANALYZE command", Count: 12, Last: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)},
		{Event: `a "quoted" event`, Solution: "line\nbreak", Count: 1, Last: time.Date(2026, 11, 29, 8, 5, 1, 0, time.UTC)},
	})
	want := "alerts of the last 7 days for queries that scanned public.sales (stl_alert_event_log), most frequent first:\n" +
		`"Missing query planner statistics" (solution: "Run the ANALYZE command"), 12 times, last 2026-11-30 10:00:00` + "\n" +
		`"a \"quoted\" event" (solution: "line\nbreak"), 1 time, last 2026-11-29 08:05:01` + "\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

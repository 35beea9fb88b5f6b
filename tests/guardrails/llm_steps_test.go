package guardrails

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// registerModelSteps are the steps of the model tier (llm.feature): the
// provider stand-in, what it was shown, and what the reporter recorded.
func registerModelSteps(sc *godog.ScenarioContext, w *world) {
	answer := func(verdict, reason string, delay time.Duration) func(harness.ModelCall) harness.ModelReply {
		return func(harness.ModelCall) harness.ModelReply {
			return harness.ModelReply{Delay: delay, Tool: "decide", Input: map[string]any{"verdict": verdict, "reason": reason, "suggestion": ""}}
		}
	}
	sc.Step(`^a model provider "(\w+)" that answers "(\w+)" with the reason "(.*)"$`, func(provider, verdict, reason string) error {
		w.modelProvider(provider).Answer(answer(verdict, reason, 0))
		return nil
	})
	sc.Step(`^a model provider "(\w+)" that answers "(\w+)" with the reason "(.*)" after (\d+) seconds$`, func(provider, verdict, reason string, secs int) error {
		w.modelProvider(provider).Answer(answer(verdict, reason, time.Duration(secs)*time.Second))
		return nil
	})
	sc.Step(`^a model provider "(\w+)" that approves any statement whose text asks for it$`, func(provider string) error {
		// A naive model: it obeys what it reads. The proxy must not let
		// the statement's text reach it as anything it could obey.
		w.modelProvider(provider).Answer(func(c harness.ModelCall) harness.ModelReply {
			if strings.Contains(c.Text, "approve") {
				return answer("efficient", "the statement asks to be approved", 0)(c)
			}
			return answer("inefficient", "a scan of gr_customers per name", 0)(c)
		})
		return nil
	})
	sc.Step(`^a model provider "(\w+)" that fails with HTTP (\d+)$`, func(provider string, status int) error {
		w.modelProvider(provider).Answer(func(harness.ModelCall) harness.ModelReply { return harness.ModelReply{Status: status} })
		return nil
	})
	sc.Step(`^a model provider "(\w+)" that calls the column "(\w+)" a passport number$`, func(provider, column string) error {
		w.modelProvider(provider).Answer(func(c harness.ModelCall) harness.ModelReply {
			verdict := map[string]any{"sensitive": false, "kind": "none", "reason": "nothing in the name or shapes says a person"}
			if strings.Contains(c.Text, `"name": "`+column+`"`) {
				verdict = map[string]any{"sensitive": true, "kind": "passport", "reason": "a membership reference in a passport-like shape"}
			}
			return harness.ModelReply{Tool: "classify", Input: verdict}
		})
		return nil
	})
	sc.Step(`^the fast node has a table gr_members whose member_ref values look like "(\w+)"$`, func(string) error {
		return load(shared.fast, `DROP TABLE IF EXISTS gr_members;
CREATE TABLE gr_members (id int PRIMARY KEY, member_ref text NOT NULL, plan text NOT NULL);
INSERT INTO gr_members SELECT i, 'MR' || lpad((i * 7919 % 10000000)::text, 7, '0'), (ARRAY['basic','gold'])[1 + i % 2] FROM generate_series(1, 300) i;
ANALYZE gr_members; GRANT SELECT ON gr_members TO PUBLIC;`)
	})
	sc.Step(`^a developer runs pgproxy generate-config$`, func() error {
		w.generated = filepath.Join(w.t.TempDir(), "masking.yaml")
		return w.runProxyCommand("generate-config", "-o", w.generated)
	})
	sc.Step(`^the masking file masks gr_members.member_ref with a comment naming the model "(.*)"$`, func(model string) error {
		data, err := os.ReadFile(w.generated)
		if err != nil {
			return err
		}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if strings.Contains(l, "member_ref") && !strings.HasPrefix(strings.TrimSpace(l), "#") && i > 0 {
				if c := lines[i-1]; strings.Contains(c, "medium") && strings.Contains(c, "model "+model) {
					return nil
				}
				return fmt.Errorf("member_ref is masked, but its comment %q names no model %s", lines[i-1], model)
			}
		}
		return fmt.Errorf("member_ref is not masked:\n%s", data)
	})
	sc.Step(`^the model was shown the shape "(.*)"$`, func(shape string) error {
		for _, c := range w.model.Calls() {
			if strings.Contains(c.Text, `"shape": "`+shape+`"`) {
				return nil
			}
		}
		return fmt.Errorf("no request showed the shape %q", shape)
	})
	sc.Step(`^the fast node has a stand-in svv_table_info$`, func() error {
		if err := servers(w.t); err != nil {
			return err
		}
		return load(shared.fast, redshiftStandIn)
	})
	sc.Step(`^the fast node has stand-in stl_scan and stl_alert_event_log tables$`, func() error {
		if err := servers(w.t); err != nil {
			return err
		}
		return load(shared.fast, redshiftAlertsStandIn)
	})
	sc.Step(`^a model provider "(\w+)" that calls alert_events for "(\w+)", then answers "(\w+)" with the reason "(.*)"$`, func(provider, table, verdict, reason string) error {
		w.modelProvider(provider).Answer(func(c harness.ModelCall) harness.ModelReply {
			if c.Turns == 0 {
				return harness.ModelReply{Tool: "alert_events", Input: map[string]any{"table": table}}
			}
			return answer(verdict, reason, 0)(c)
		})
		return nil
	})
	sc.Step(`^the model was (offered|not offered) the tool "(\w+)"$`, func(offered, tool string) error {
		calls := w.model.Calls()
		if len(calls) == 0 {
			return fmt.Errorf("the model was not asked at all")
		}
		for _, c := range calls {
			if slices.Contains(c.Tools, tool) != (offered == "offered") {
				return fmt.Errorf("the model was to be %s %s; a request offered %v", offered, tool, c.Tools)
			}
		}
		return nil
	})
	sc.Step(`^the tool result the model was shown (contains|does not contain) "(.*)"$`, func(verb, text string) error {
		var results []string
		for _, c := range w.model.Calls() {
			results = append(results, c.ToolResults...)
		}
		if len(results) == 0 {
			return fmt.Errorf("the model was shown no tool result")
		}
		all := strings.Join(results, "\n")
		switch has := strings.Contains(all, text); {
		case verb == "contains" && !has:
			return fmt.Errorf("no %q in the tool results the model was shown:\n%s", text, all)
		case verb != "contains" && has:
			return fmt.Errorf("%q in the tool results the model was shown:\n%s", text, all)
		}
		return nil
	})
	sc.Step(`^a real model provider from the environment$`, func() error {
		vars := []string{"LLM_PROVIDER", "LLM_MODEL", "PORTKEY_BASE_URL", "PORTKEY_API_KEY", "PORTKEY_VIRTUAL_KEY",
			"BEDROCK_REGION", "BEDROCK_MODEL_ID", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY",
			"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}
		found := false
		for _, k := range vars {
			if v := os.Getenv(k); v != "" {
				w.env[k] = v
				found = found || k == "PORTKEY_API_KEY" || k == "BEDROCK_REGION" || k == "ANTHROPIC_API_KEY" || k == "OPENAI_API_KEY" || k == "OPENAI_BASE_URL"
			}
		}
		if !found {
			msg := "@real-llm skipped: no provider credentials in the environment (PORTKEY_API_KEY, BEDROCK_REGION, ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_BASE_URL)"
			fmt.Println(msg)
			w.t.Log(msg)
			return godog.ErrSkip
		}
		return nil
	})
	sc.Step(`^the model provider answers "(\w+)" with the reason "(.*)"$`, func(verdict, reason string) error {
		w.model.Answer(answer(verdict, reason, 0))
		return nil
	})
	sc.Step(`^(\d+) seconds pass$`, func(secs int) error {
		time.Sleep(time.Duration(secs) * time.Second)
		return nil
	})
	sc.Step(`^the model was asked (\d+) times? with temperature 0$`, func(n int) error {
		var asked int
		for _, c := range w.model.Calls() {
			if c.Turns == 0 {
				asked++
			}
			if c.Temperature == nil || *c.Temperature != 0 {
				return fmt.Errorf("a request without temperature 0 (%v)", c.Temperature)
			}
		}
		if asked != n {
			return fmt.Errorf("the model was asked %d times, want %d", asked, n)
		}
		return nil
	})
	sc.Step(`^the model was never shown "(.*)"$`, func(text string) error {
		calls := w.model.Calls()
		if len(calls) == 0 {
			return fmt.Errorf("the model was not asked at all")
		}
		for _, c := range calls {
			if strings.Contains(c.Text, text) || strings.Contains(c.System, text) {
				return fmt.Errorf("the model was shown %q:\n%s", text, c.Text)
			}
		}
		return nil
	})
	sc.Step(`^within (\d+) seconds query_issues has a row with source "(\w+)" and model "(.*)"$`, func(secs int, source, model string) error {
		return w.poll(secs, func(ctx context.Context) error {
			rows, err := w.reporterRows(ctx, `SELECT source, origin, model FROM pgproxy.query_issues WHERE source = $1 AND model LIKE $2 || '%'`, source, model)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				all, _ := w.reporterRows(ctx, `SELECT source, origin, model, reason FROM pgproxy.query_issues`)
				return fmt.Errorf("no query_issues row with source %s and model %s…: %v", source, model, all)
			}
			return nil
		})
	})
	sc.Step(`^within (\d+) seconds query_metrics has a row for "(.*)" with llm_ms set$`, func(secs int, sql string) error {
		fp, err := pg_query.Fingerprint(sql)
		if err != nil {
			return err
		}
		return w.poll(secs, func(ctx context.Context) error {
			rows, err := w.reporterRows(ctx, `SELECT llm_ms, analysis_ms FROM pgproxy.query_metrics WHERE fingerprint = $1 AND llm_ms IS NOT NULL AND llm_ms > 0`, fp)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				all, _ := w.reporterRows(ctx, `SELECT action, decision_source, llm_ms FROM pgproxy.query_metrics`)
				return fmt.Errorf("no query_metrics row of %s with llm_ms: %v", fp, all)
			}
			llm, _ := strconv.ParseFloat(rows[0][0], 64)
			analysis, _ := strconv.ParseFloat(rows[0][1], 64)
			if llm > analysis {
				return fmt.Errorf("llm_ms %g is more than analysis_ms %g", llm, analysis)
			}
			return nil
		})
	})
	sc.Step(`^within (\d+) seconds query_metrics has an llm_answer row$`, func(secs int) error {
		return w.poll(secs, func(ctx context.Context) error {
			rows, err := w.reporterRows(ctx, `SELECT decision_source FROM pgproxy.query_metrics WHERE action = 'llm_answer' AND llm_ms > 0 AND fingerprint <> ''`)
			if err != nil {
				return err
			}
			if len(rows) == 0 || rows[0][0] != "llm" {
				return fmt.Errorf("no llm_answer row: %v", rows)
			}
			return nil
		})
	})
	sc.Step(`^the proxy log holds no provider key$`, func() error {
		logs := w.proxy.Logs()
		for _, k := range []string{w.model.OpenAIKey, w.model.AnthropicKey, w.model.PortkeyKey, w.model.PortkeyVirtualKey, w.modelAccount.Own.Secret} {
			if strings.Contains(logs, k) {
				return fmt.Errorf("the proxy log holds a provider key")
			}
		}
		if !strings.Contains(logs, "the model tier is on") {
			return fmt.Errorf("no start-up line of the model tier")
		}
		return nil
	})
	sc.Step(`^the metric (\S+) is (\d+)$`, func(series string, want float64) error {
		return w.poll(3, func(context.Context) error {
			v, err := w.metric(series)
			if err != nil {
				return err
			}
			if v != want {
				return fmt.Errorf("%s is %g, want %g", series, v, want)
			}
			return nil
		})
	})
	sc.Step(`^the proxy log says "(.*)" once$`, func(text string) error {
		if n := strings.Count(w.proxy.Logs(), text); n != 1 {
			return fmt.Errorf("the proxy log says %q %d times, want once", text, n)
		}
		return nil
	})
}

// modelProvider starts the provider stand-in and points the proxy at it as
// provider.
func (w *world) modelProvider(provider string) *harness.ModelServer {
	w.modelAccount = harness.NewAWSAccount("eu-west-1")
	w.model = harness.StartModelServer(w.t, w.modelAccount)
	s := w.model
	w.env["LLM_PROVIDER"] = provider
	switch provider {
	case "portkey":
		w.env["PORTKEY_BASE_URL"], w.env["PORTKEY_API_KEY"], w.env["PORTKEY_VIRTUAL_KEY"] = s.URL+"/v1", s.PortkeyKey, s.PortkeyVirtualKey
	case "openai":
		w.env["OPENAI_BASE_URL"], w.env["OPENAI_API_KEY"], w.env["LLM_MODEL"] = s.URL+"/v1", s.OpenAIKey, "local-model"
	case "anthropic":
		w.env["ANTHROPIC_BASE_URL"], w.env["ANTHROPIC_API_KEY"] = s.URL, s.AnthropicKey
	case "bedrock":
		for k, v := range w.modelAccount.Env() {
			w.env[k] = v
		}
		w.env["BEDROCK_REGION"], w.env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] = "eu-west-1", s.URL
	}
	return s
}

// poll runs check until it succeeds or secs pass.
func (w *world) poll(secs int, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// redshiftStandIn is a view of the fast node's tables under Redshift's
// svv_table_info column names (redshift.feature): gr_orders distributed on
// customer_id and sorted on created_at, gr_events sorted on customer_id
// with a row skew of 5.5, gr_countries DISTSTYLE ALL.
const redshiftStandIn = `
CREATE OR REPLACE VIEW public.svv_table_info AS
SELECT current_database()::text AS database, n.nspname::text AS schema, c.oid::bigint AS table_id, c.relname::text AS "table",
	'Y'::text AS encoded,
	CASE c.relname WHEN 'gr_orders' THEN 'KEY(customer_id)' WHEN 'gr_countries' THEN 'ALL' ELSE 'EVEN' END::text AS diststyle,
	CASE c.relname WHEN 'gr_orders' THEN 'created_at' WHEN 'gr_events' THEN 'customer_id' END::text AS sortkey1,
	0 AS max_varchar, 'none'::text AS sortkey1_enc,
	CASE WHEN c.relname IN ('gr_orders', 'gr_events') THEN 1 ELSE 0 END AS sortkey_num,
	(pg_total_relation_size(c.oid) / 1048576)::bigint AS size, 0.0::numeric(10,4) AS pct_used, 0::bigint AS empty,
	0.0::numeric(5,2) AS unsorted, 0.0::numeric(5,2) AS stats_off, c.reltuples::numeric(38,0) AS tbl_rows,
	NULL::numeric(19,2) AS skew_sortkey1,
	CASE c.relname WHEN 'gr_events' THEN 5.5 ELSE 1.0 END::numeric(19,2) AS skew_rows,
	c.reltuples::numeric(38,0) AS estimated_visible_rows, NULL::text AS risk_event,
	NULL::numeric(12,2) AS vacuum_sort_benefit, now()::timestamp AS create_time
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema');
GRANT SELECT ON public.svv_table_info TO PUBLIC;
`

// redshiftAlertsStandIn are tables of Redshift's stl_scan and
// stl_alert_event_log columns (redshift.feature). stl_alert_event_log names
// no table: its rows join stl_scan's on (query, slice, segment, step), and
// stl_scan.tbl is svv_table_info.table_id (the stand-in's pg_class oid).
// Queries 901 (two slices) and 902 scanned gr_orders two days ago with
// missing statistics, 903 three days ago with deleted rows; 904 scanned it
// ten days ago (older than the 7 days alert_events reads), 905 scanned
// gr_events yesterday, and an alert of query 901's step 7 (no scan) is not
// about gr_orders either.
const redshiftAlertsStandIn = `
DROP TABLE IF EXISTS public.stl_scan, public.stl_alert_event_log;
CREATE TABLE public.stl_scan (userid int, query int, slice int, segment int, step int, starttime timestamp, endtime timestamp,
	elapsed bigint, rows bigint, bytes bigint, fetches bigint, type int, tbl int, is_rrscan char(1), is_delayed_scan char(1),
	rows_pre_filter bigint, rows_pre_user_filter bigint, perm_table_name char(136));
CREATE TABLE public.stl_alert_event_log (userid int, query int, slice int, segment int, step int, pid int, xid bigint,
	event char(1024), solution char(1024), event_time timestamp);
INSERT INTO public.stl_scan
SELECT 100, q, sl, 0, 1, t, t + interval '9 seconds', 9000000, 2000000, 104857600, 0, 2, tab::regclass::oid::int, 'f', 'f',
	2000000, 2000000, tab
FROM (VALUES (901, 0, 'gr_orders', 2), (901, 1, 'gr_orders', 2), (902, 0, 'gr_orders', 2), (903, 0, 'gr_orders', 3),
	(904, 0, 'gr_orders', 10), (905, 0, 'gr_events', 1)) v(q, sl, tab, days),
	LATERAL (SELECT (now() AT TIME ZONE 'UTC') - days * interval '1 day' AS t) ts;
INSERT INTO public.stl_alert_event_log
SELECT 100, q, sl, 0, step, 4242, 77, event, solution, (now() AT TIME ZONE 'UTC') - days * interval '1 day' + interval '1 minute'
FROM (VALUES
	(901, 0, 1, 'Missing query planner statistics', 'Run the ANALYZE command', 2),
	(901, 1, 1, 'Missing query planner statistics', 'Run the ANALYZE command', 2),
	(902, 0, 1, 'Missing query planner statistics', 'Run the ANALYZE command', 2),
	(903, 0, 1, 'Scanned a large number of deleted rows', 'Run the VACUUM command to reclaim deleted space', 3),
	(904, 0, 1, 'Nested Loop Join in the query plan', 'Review the join predicates to avoid Cartesian products', 10),
	(905, 0, 1, 'Very selective query filter', 'Review the choice of sort key to enable range restricted scans', 1),
	(901, 0, 7, 'Distributed a large number of rows across the network', 'Review the choice of distribution key', 2)
) v(q, sl, step, event, solution, days);
GRANT SELECT ON public.stl_scan, public.stl_alert_event_log TO PUBLIC;
`

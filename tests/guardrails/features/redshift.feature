Feature: The Redshift flavour: plans from EXPLAIN's text, facts from svv_table_info, Redshift's own signals
  With BACKEND_FLAVOR=redshift the analysis reads table facts from svv_table_info (rows,
  distribution style, sort key, skew) and plans with EXPLAIN's text (Redshift has no JSON plans),
  and judges what costs on Redshift: data moved between nodes, nested loops, scans of big tables
  with no restriction on their sort key, skewed tables. No Redshift is reachable here: the fast
  node (PostgreSQL) gets a stand-in svv_table_info view with Redshift's column names, in which
  gr_orders is sorted on created_at and gr_events on customer_id with a skew of 5.5; its plans
  are PostgreSQL's text plans, which the same parser reads (the DS_* distribution signals are
  tested on Redshift's own plan texts in userspace/analysis). The model tier's alert_events tool
  reads stand-in stl_scan and stl_alert_event_log tables of Redshift's column names.

  Background:
    Given the fast node has a stand-in svv_table_info

  Scenario: a scan of a big table with no restriction on its sort key is blocked
    Given the proxy runs in blocking mode with:
      | BACKEND_FLAVOR | redshift |
    When the client runs "SELECT * FROM gr_orders WHERE note = 'note 7'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: scan of about 2,000,000 rows of gr_orders without a restriction on its sort key created_at"
    And the refusal says "sort key", with a detail containing "svv_table_info: tbl_rows 2000000, sortkey1 created_at, diststyle KEY(customer_id)" and a hint containing "restrict created_at"

  Scenario: a range on the sort key runs
    Given the proxy runs in blocking mode with:
      | BACKEND_FLAVOR | redshift |
    When the client runs "SELECT count(*) FROM gr_orders WHERE created_at >= '2024-01-05' AND created_at < '2024-01-06'"
    Then the statement succeeds

  Scenario: a skewed table is found
    Given the proxy runs in blocking mode with:
      | BACKEND_FLAVOR | redshift |
    When the client runs "SELECT kind, count(*) FROM gr_events WHERE customer_id = 5 GROUP BY kind"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: gr_events is skewed"
    And the refusal says "skewed", with a detail containing "skew_rows 5.50" and a hint containing "DISTKEY"

  Scenario: a nested loop over many row pairs is blocked
    Given the proxy runs in blocking mode with:
      | BACKEND_FLAVOR | redshift |
    When the client runs "SELECT count(*) FROM gr_countries c JOIN gr_customers u ON u.country < c.code"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: nested loop pairs about"

  Scenario: BACKEND_FLAVOR=auto reads version(): PostgreSQL is judged as PostgreSQL
    Given the proxy runs in blocking mode with:
      | BACKEND_FLAVOR | auto |
    When the client runs "SELECT * FROM gr_orders WHERE note = 'note 7'"
    Then the statement is refused with SQLSTATE 54000 and a message starting "pgproxy blocked this query: sequential scan of public.gr_orders"

  Scenario: pgproxy analyze judges with the flavour
    Given the environment has BACKEND_FLAVOR=redshift and ANALYSIS_MAX_ROWS=1000000
    When a developer runs pgproxy analyze "SELECT * FROM gr_orders WHERE note = 'note 8'"
    Then it exits with status 1
    And its output has a line starting "reason: scan of about 2,000,000 rows of gr_orders without a restriction on its sort key created_at"
    And its output has a line "check: redshift_no_sortkey_filter"

  Scenario: the model reads Redshift's recent alerts of a table the statement reads (alert_events)
    (The stand-in alert log holds alerts of queries that scanned gr_orders two and three days ago,
    one of ten days ago, one of a query that scanned gr_events, and one of a step that scanned
    no table.)
    Given the fast node has stand-in stl_scan and stl_alert_event_log tables
    And a model provider "anthropic" that calls alert_events for "gr_orders", then answers "inefficient" with the reason "gr_orders is read in full and has no planner statistics"
    And the environment has BACKEND_FLAVOR=redshift and ANALYSIS_MAX_ROWS=1000000
    When a developer runs pgproxy analyze "SELECT * FROM gr_orders WHERE note = 'note 9'"
    Then it exits with status 1
    And its output has a line starting "reason: gr_orders is read in full and has no planner statistics"
    And the model was offered the tool "alert_events"
    And the tool result the model was shown contains "alerts of the last 7 days for queries that scanned public.gr_orders"
    And the tool result the model was shown contains ""Missing query planner statistics" (solution: "Run the ANALYZE command"), 3 times, last"
    And the tool result the model was shown contains ""Scanned a large number of deleted rows" (solution: "Run the VACUUM command to reclaim deleted space"), 1 time, last"
    And the tool result the model was shown does not contain "Nested Loop Join"
    And the tool result the model was shown does not contain "Very selective query filter"
    And the tool result the model was shown does not contain "Distributed a large number of rows"

  Scenario: with the postgres flavour the model is not offered alert_events
    Given a model provider "openai" that calls alert_events for "gr_orders", then answers "inefficient" with the reason "gr_orders is read in full"
    And the environment has BACKEND_FLAVOR=postgres and ANALYSIS_MAX_ROWS=1000000
    When a developer runs pgproxy analyze "SELECT * FROM gr_orders WHERE note = 'note 10'"
    Then it exits with status 1
    And its output has a line starting "reason: gr_orders is read in full"
    And the model was offered the tool "table_facts"
    And the model was not offered the tool "alert_events"
    And the tool result the model was shown contains "no tool named alert_events"

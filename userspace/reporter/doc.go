// Package reporter records what the guardrails saw, in the reporter database
// (REPORTER_DB_URL): one row per finished statement in pgproxy.query_metrics
// and one row per inefficient statement in pgproxy.query_issues.
//
// Nothing on the query path waits for it. Reporter.Metric and Reporter.Issue
// put a record in a bounded queue and return; when the queue is full the
// record is dropped and counted. One writer goroutine takes the records in
// batches (BatchSize, or what arrived within FlushInterval) and writes each
// table's batch with one COPY.
//
// # Faults
//
//   - The database is down at start: New succeeds; the writer connects in
//     the background, retrying with backoff (Backoff.Min doubling to
//     Backoff.Max, 20% jitter). A malformed URL is New's error.
//   - The database goes away (outage, restart, failover, network): the batch
//     in hand is kept and retried with the same backoff on a new connection;
//     records wait in the queues meanwhile, and those that find their queue
//     full are dropped (DropQueueFull). Writing resumes when the server is
//     back. A COPY whose answer is lost with the connection is retried, so a
//     batch may, rarely, be written twice.
//   - PostgreSQL rejects a record (a NUL byte or invalid UTF-8 in a text
//     value, a constraint an operator added: SQLSTATE class 22 or 23, or
//     54000): the batch is split in halves until the bad records are found;
//     they are dropped (DropRejected) and reported to Hooks.WriteError, the
//     rest is written.
//   - Other errors of a COPY (a table dropped, a read-only standby,
//     permissions) are treated as an outage: reconnect, check the schema,
//     retry with backoff.
//   - Close(ctx) stops accepting records (later ones are DropClosed), writes
//     what is queued, and returns nil when all of it was written. When ctx
//     ends first, the write in progress is interrupted, the rest is dropped
//     (DropClosed) and Close returns a *LostError with the counts.
//
// Hooks report queue depth, writes, drops and errors for metrics; Stats
// returns the same counters. The package never logs.
//
// # Schema
//
// The writer creates what is missing of the schema when it connects (at
// start and after every reconnect): the schema, the tables, columns a
// table lacks (a table made by an older version), and the indexes. It takes
// pg_advisory_xact_lock(8099566091647875329) first ("pgproxy" and 1 in
// ASCII), so replicas that start at once wait for each other; a creator
// that does not take the lock and wins a race (duplicate-object errors) is
// retried. When everything exists
// no DDL runs: a role that may only insert works with tables an operator
// created with SchemaSQL, which returns exactly this:
//
//	CREATE SCHEMA IF NOT EXISTS pgproxy;
//	CREATE TABLE IF NOT EXISTS pgproxy.query_metrics (
//	    recorded_at      timestamptz NOT NULL DEFAULT now(),
//	    fingerprint      text NOT NULL DEFAULT '',
//	    query_text       text,
//	    identity         text NOT NULL DEFAULT '',
//	    db_user          text NOT NULL DEFAULT '',
//	    database         text NOT NULL DEFAULT '',
//	    mode             text NOT NULL DEFAULT '',
//	    action           text NOT NULL DEFAULT '',
//	    verdict          text NOT NULL DEFAULT '',
//	    decision_source  text NOT NULL DEFAULT '',
//	    analysis_ms      double precision NOT NULL DEFAULT 0,
//	    backend_ms       double precision NOT NULL DEFAULT 0,
//	    total_ms         double precision NOT NULL DEFAULT 0,
//	    rows             bigint NOT NULL DEFAULT 0,
//	    sqlstate         text NOT NULL DEFAULT '',
//	    node             text NOT NULL DEFAULT '',
//	    conn_id          bigint NOT NULL DEFAULT 0,
//	    proxy_instance   text NOT NULL DEFAULT '',
//	    llm_ms           double precision
//	);
//	CREATE INDEX IF NOT EXISTS query_metrics_recorded_at_idx ON pgproxy.query_metrics (recorded_at);
//	CREATE INDEX IF NOT EXISTS query_metrics_fingerprint_idx ON pgproxy.query_metrics (fingerprint, recorded_at);
//	CREATE TABLE IF NOT EXISTS pgproxy.query_issues (
//	    detected_at      timestamptz NOT NULL DEFAULT now(),
//	    fingerprint      text NOT NULL DEFAULT '',
//	    query_text       text,
//	    identity         text NOT NULL DEFAULT '',
//	    db_user          text NOT NULL DEFAULT '',
//	    database         text NOT NULL DEFAULT '',
//	    verdict          text NOT NULL DEFAULT '',
//	    reason           text NOT NULL DEFAULT '',
//	    suggestion       text NOT NULL DEFAULT '',
//	    check_name       text NOT NULL DEFAULT '',
//	    evidence         text NOT NULL DEFAULT '',
//	    source           text NOT NULL DEFAULT '',
//	    origin           text NOT NULL DEFAULT '',
//	    action           text NOT NULL DEFAULT '',
//	    conn_id          bigint NOT NULL DEFAULT 0,
//	    proxy_instance   text NOT NULL DEFAULT '',
//	    model            text NOT NULL DEFAULT ''
//	);
//	CREATE INDEX IF NOT EXISTS query_issues_detected_at_idx ON pgproxy.query_issues (detected_at);
//	CREATE INDEX IF NOT EXISTS query_issues_fingerprint_idx ON pgproxy.query_issues (fingerprint, detected_at);
//
// Text columns that do not apply hold an empty string, never NULL; only
// query_text is NULL when no text is stored. The tables only grow: delete
// old rows by recorded_at / detected_at (or partition them) as retention
// requires.
//
// # Columns of pgproxy.query_metrics (one row per finished statement)
//
//   - recorded_at: when the statement finished, by the proxy's clock.
//   - fingerprint: pg_query's fingerprint of the client's text, the same
//     for statements that differ only in constants, whitespace and
//     comments; empty when the text did not parse.
//   - query_text: the statement text, only with STORE_RAW_QUERY=true, else
//     NULL; its constants replaced by $n and comments removed
//     (sqlparse.Normalize); NULL when it does not parse or is longer than 16 KiB
//     (Options.MaxQueryText).
//   - identity: the token (OIDC) identity; empty in passthrough.
//   - db_user: the database role of the backend session.
//   - database: the database of the backend session.
//   - mode: the PROXY_MODE the statement was judged under.
//   - action: what the proxy did with it: allow, refuse, rewrite or route.
//   - verdict: efficient or inefficient; empty when it was not analysed.
//   - decision_source: what decided: rules, planner, memory, valkey,
//     override, fallback, guard, ...; empty when no policy did.
//   - analysis_ms: the time the policies took to decide, in milliseconds.
//   - backend_ms: from sending the statement to the backend to its last
//     answer, in milliseconds (0 when it did not run).
//   - total_ms: from the client's message to the last answer, in
//     milliseconds.
//   - rows: the row count of the command tags (SELECT n, INSERT 0 n, ...).
//   - sqlstate: the error the client saw; empty on success.
//   - node: the backend that ran the statement (the primary, or the shunt
//     target); empty when it did not run.
//   - conn_id: the proxy's connection id of the session, as on its log lines.
//   - proxy_instance: the proxy that wrote the row (Options.Instance,
//     default the host name).
//   - llm_ms: the time the statement waited for the language model (the
//     analysis's model tier, ANALYSIS_LLM_MODE=sync), in milliseconds; on
//     a row with action llm_answer, the model's time for an answer that
//     arrived in the background; NULL when no model was asked (every cache
//     hit).
//
// # Columns of pgproxy.query_issues (one row per inefficient statement)
//
//   - detected_at: when the statement was judged, by the proxy's clock.
//   - fingerprint: pg_query's fingerprint of the statement.
//   - query_text: as in query_metrics.
//   - identity: the token (OIDC) identity; empty in passthrough.
//   - db_user: the database role of the backend session.
//   - database: the database the statement was sent to.
//   - verdict: the analysis verdict (inefficient).
//   - reason: what is wrong, in words ("sequential scan of public.orders,
//     about 2,000,000 rows, filter on note").
//   - suggestion: what would fix it ("an index on orders(note) would serve
//     this filter"); empty when there is none.
//   - check_name: the rule or plan check that decided, from a bounded set
//     (cartesian_join, seq_scan, ...).
//   - evidence: what the verdict rests on: plan node, estimates, facts.
//   - source: the tier that decided; for a cached decision, where it was
//     found: rules, planner, memory, valkey, override, fallback, llm.
//   - origin: the tier that made the decision originally.
//   - action: what the proxy did: block, log or shunt (PROXY_MODE).
//   - conn_id: the proxy's connection id of the session.
//   - proxy_instance: the proxy that wrote the row.
//   - model: the language model that decided or explained (provider/model);
//     empty when none did. When the model's answer arrives after the row
//     was written (ANALYSIS_LLM_MODE=async, or an explanation of a statement
//     blocked at once), the row is updated: verdict, reason, suggestion,
//     source and origin (llm) and model become the model's, and evidence
//     starts with what rules or the planner said.
package reporter

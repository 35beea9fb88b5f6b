package reporter

import "time"

// Metric is one row of pgproxy.query_metrics: one finished statement (a
// simple Query, an Execute of a portal, or a statement refused before it
// ran). Each field names its column. Text fields that do not apply are ""
// (an empty string in the table), never NULL, except QueryText.
type Metric struct {
	// RecordedAt (recorded_at) is when the statement finished, by the
	// proxy's clock. Metric fills in the time of the call when it is zero.
	RecordedAt time.Time
	// Fingerprint (fingerprint) is pg_query's fingerprint of the client's
	// text; "" when the text did not parse.
	Fingerprint string
	// QueryText (query_text) is the statement text, given only when the
	// caller stores query text (STORE_RAW_QUERY=true); "" is written as
	// NULL, and so is a text longer than Options.MaxQueryText. Unless
	// Options.KeepQueryConstants is set, the writer replaces its constants
	// with $n and removes comments (NormalizeQuery) before writing; a text
	// that does not parse is written as NULL.
	QueryText string
	// Identity (identity) is the token identity (OIDC), "" in passthrough
	// (the identity column then gets User).
	Identity string
	// User (db_user) is the database role of the backend session.
	User string
	// Database (database) is the database of the backend session.
	Database string
	// Mode (mode) is the PROXY_MODE the statement was judged under.
	Mode string
	// Action (action) is what the proxy did with it: allow, refuse, rewrite
	// or route (stmt.Action's names).
	Action string
	// Verdict (verdict) is the analysis verdict: efficient, inefficient, or
	// "" when the statement was not analysed.
	Verdict string
	// DecisionSource (decision_source) is what decided: rules, planner,
	// memory, valkey, override, fallback, guard, ... ("" when no policy did).
	DecisionSource string
	// Analysis (analysis_ms) is the time the policies took to decide.
	Analysis time.Duration
	// Backend (backend_ms) is the time from sending the statement to the
	// backend to its last answer (0 when it did not run).
	Backend time.Duration
	// Total (total_ms) is the time from the client's message to the last
	// answer.
	Total time.Duration
	// Rows (rows) is the row count of the command tags (SELECT n, INSERT 0 n).
	Rows int64
	// SQLState (sqlstate) is the error the client saw, "" on success.
	SQLState string
	// Node (node) is the backend that ran the statement (the session's leg,
	// e.g. the primary or the shunt target); "" when it did not run.
	Node string
	// ConnID (conn_id) is the proxy's connection id of the session, the one
	// on its log lines.
	ConnID uint64
	// LLM (llm_ms) is the time the statement waited for the language model
	// (the analysis's model tier in sync mode), or for an "llm_answer" row
	// the model's time for an answer that arrived in the background; 0 is
	// written as NULL (no model was asked, as on every cache hit).
	LLM time.Duration
}

// Issue is one row of pgproxy.query_issues: a statement the analysis judged
// inefficient. Each field names its column. Text fields that do not apply
// are "" (an empty string in the table), never NULL, except QueryText.
type Issue struct {
	// DetectedAt (detected_at) is when the statement was judged, by the
	// proxy's clock. Issue fills in the time of the call when it is zero.
	DetectedAt time.Time
	// Fingerprint (fingerprint) is pg_query's fingerprint of the statement.
	Fingerprint string
	// QueryText (query_text): as Metric.QueryText.
	QueryText string
	// Identity (identity) is the token identity (OIDC), "" in passthrough
	// (the identity column then gets User).
	Identity string
	// User (db_user) is the database role of the backend session.
	User string
	// Database (database) is the database the statement was sent to.
	Database string
	// Verdict (verdict) is the analysis verdict (normally inefficient).
	Verdict string
	// Reason (reason) says what is wrong, in words (analysis.Decision.Reason).
	Reason string
	// Suggestion (suggestion) says what would fix it ("" when none).
	Suggestion string
	// Check (check_name) names the rule or plan check that decided, from a
	// bounded set such as cartesian_join or seq_scan.
	Check string
	// Evidence (evidence) is what the verdict rests on: plan node,
	// estimates, table facts.
	Evidence string
	// Source (source) is the tier that decided; for a cached decision,
	// where it was found (rules, planner, memory, valkey, override, fallback).
	Source string
	// Origin (origin) is the tier that made the decision originally.
	Origin string
	// Action (action) is what the proxy did: block, log or shunt (PROXY_MODE).
	Action string
	// ConnID (conn_id) is the proxy's connection id of the session.
	ConnID uint64
	// Model (model) names the language model that decided or explained
	// (provider/model), "" when none did.
	Model string
}

// Table names one of the two tables, as given to the hooks.
type Table string

// The tables the reporter writes.
const (
	TableMetrics Table = "query_metrics"
	TableIssues  Table = "query_issues"
)

// DropReason says why records were dropped.
type DropReason string

const (
	// DropQueueFull: the record arrived while its queue was full (the
	// reporter database is down or slower than the proxy).
	DropQueueFull DropReason = "queue_full"
	// DropRejected: PostgreSQL refused the record itself (a NUL byte or
	// invalid UTF-8 in a text value, a constraint an operator added); the
	// rest of its batch is written.
	DropRejected DropReason = "rejected"
	// DropClosed: the record was not written because the reporter closed:
	// still queued when Close's deadline passed, or sent after Close.
	DropClosed DropReason = "closed"
)

// Package analysis judges read statements: is this statement shape
// efficient enough to run on the production database? Tier 1 reads the
// parse tree with table facts from the metadata cache (rules.go); tier 2
// reads PostgreSQL's plan (planner.go). A Decision is made once per
// fingerprint and database and cached (package cache).
package analysis

import "time"

// Verdict is what the analysis concluded.
type Verdict string

const (
	// Efficient statements run as usual.
	Efficient Verdict = "efficient"
	// Inefficient statements are blocked, logged or shunted (PROXY_MODE).
	Inefficient Verdict = "inefficient"
)

// Source names what made a decision, as recorded in query_metrics and
// query_issues and in the metrics' source label.
type Source string

const (
	SourceRules    Source = "rules"
	SourcePlanner  Source = "planner"
	SourceMemory   Source = "memory"   // the in-process decision cache
	SourceValkey   Source = "valkey"   // the shared decision cache
	SourceOverride Source = "override" // ANALYSIS_OVERRIDES_PATH
	// SourceFallback is the configured fail-open or fail-closed answer when
	// the analysis could not finish (time limit, EXPLAIN failed).
	SourceFallback Source = "fallback"
)

// Decision is the analysis of one statement shape.
type Decision struct {
	Verdict Verdict `json:"verdict"`
	// Reason says what is wrong (or why it is fine) in words a person
	// understands: "sequential scan of public.orders, about 2,000,000 rows,
	// filter on note".
	Reason string `json:"reason"`
	// Suggestion says what would fix it: "an index on orders(note) would
	// serve this filter".
	Suggestion string `json:"suggestion,omitempty"`
	// Evidence is what the verdict rests on: plan node, estimates, facts.
	Evidence string `json:"evidence,omitempty"`
	// Check names the rule or plan check that decided (bounded set, e.g.
	// "cartesian_join", "seq_scan"); empty for efficient statements.
	Check string `json:"check,omitempty"`
	// Source is the tier that decided (for a cached decision: where it was
	// found; Origin keeps the tier that made it).
	Source Source `json:"source"`
	// Origin is the tier that made the decision originally.
	Origin Source `json:"origin,omitempty"`
	// Decided is when the decision was made.
	Decided time.Time `json:"decided"`
	// Score is how close the planner's largest estimate (rows read, joined,
	// sorted or hashed, or the total cost) came to its limit: 1 at the
	// limit; 0 when no plan measured it (rules, overrides, fallbacks). The
	// model tier's borderline band is a range of it.
	Score float64 `json:"score,omitempty"`
	// Model names the model that decided or explained (provider/model),
	// "" when none did.
	Model string `json:"model,omitempty"`
	// LLM is how long the statement waited for the model (sync mode); it
	// belongs to that one execution and is not cached.
	LLM time.Duration `json:"-"`
}

// Thresholds are the limits a statement is judged against (ANALYSIS_*).
type Thresholds struct {
	// MaxRows: a statement that would read, join, sort or hash about this
	// many rows or more is inefficient; tables with at least this many rows
	// are "big". Default 1,000,000.
	MaxRows float64
	// MaxCost: a plan whose total cost is at least this is inefficient (0:
	// not checked). Default 1,000,000 (PostgreSQL cost units).
	MaxCost float64
	// MaxOffset: an OFFSET of at least this many rows is inefficient.
	// Default 1,000,000 (an OFFSET reads and throws away that many rows).
	MaxOffset int64
}

// DefaultThresholds are the defaults a DBA would accept.
var DefaultThresholds = Thresholds{MaxRows: 1_000_000, MaxCost: 1_000_000, MaxOffset: 1_000_000}

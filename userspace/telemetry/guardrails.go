package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Guardrails are the collectors of the query analysis, the decision cache,
// the routing and the reporter. Label values are bounded: verdicts,
// sources, nodes, tiers, tables, reasons — never SQL or fingerprints.
type Guardrails struct {
	Decisions       *prometheus.CounterVec   // verdict, source
	AnalysisSeconds *prometheus.HistogramVec // source
	Routed          *prometheus.CounterVec   // node
	CacheLookups    *prometheus.CounterVec   // tier, result
	CacheErrors     *prometheus.CounterVec   // op, kind
	ValkeyUp        prometheus.Gauge
	ReporterQueue   *prometheus.GaugeVec   // table
	ReporterWritten *prometheus.CounterVec // table
	ReporterDropped *prometheus.CounterVec // table, reason
	ReporterErrors  prometheus.Counter
	OverrideReloads *prometheus.CounterVec // result
	Overrides       prometheus.Gauge

	// The statement path's label sets, resolved once and found by the
	// index of each label value in its list below (a lookup by label values,
	// or in a map keyed by them, costs more than the rest of a cached
	// decision); read-only.
	decided [len(verdicts)][len(sources)]prometheus.Counter
	took    [len(sources)]prometheus.Observer
	routed  [len(nodes)]prometheus.Counter
	lookups [len(tiers)][2]prometheus.Counter // miss, hit
}

// The label values of the statement path known in advance.
var (
	verdicts = [...]string{"efficient", "inefficient"}
	sources  = [...]string{"rules", "planner", "memory", "valkey", "override", "fallback", "llm"}
	nodes    = [...]string{"fast", "shunt"}
	tiers    = [...]string{"memory", "valkey"}
)

// index is the position of v in values, -1 when it is not there (a few
// short strings: cheaper than hashing).
func index(values []string, v string) int {
	for i, x := range values {
		if x == v {
			return i
		}
	}
	return -1
}

// decision counts a decision of verdict by source.
func (g *Guardrails) decision(verdict, source string) {
	v, s := index(verdicts[:], verdict), index(sources[:], source)
	if v < 0 || s < 0 {
		g.Decisions.WithLabelValues(verdict, source).Inc()
		return
	}
	g.decided[v][s].Inc()
}

// Decided counts a decision and observes the time it took.
func (g *Guardrails) Decided(verdict, source string, seconds float64) {
	g.decision(verdict, source)
	if s := index(sources[:], source); s >= 0 {
		g.took[s].Observe(seconds)
	} else {
		g.AnalysisSeconds.WithLabelValues(source).Observe(seconds)
	}
}

// Reused counts a decision a session gave again to a Bind of a prepared
// statement (no time is observed: nothing was looked up).
func (g *Guardrails) Reused(verdict, source string) { g.decision(verdict, source) }

// RoutedTo counts a statement run on a node.
func (g *Guardrails) RoutedTo(node string) {
	if n := index(nodes[:], node); n >= 0 {
		g.routed[n].Inc()
	} else {
		g.Routed.WithLabelValues(node).Inc()
	}
}

// CacheLookup counts a lookup of a decision cache tier.
func (g *Guardrails) CacheLookup(tier string, hit bool) {
	r, result := 0, "miss"
	if hit {
		r, result = 1, "hit"
	}
	if t := index(tiers[:], tier); t >= 0 {
		g.lookups[t][r].Inc()
	} else {
		g.CacheLookups.WithLabelValues(tier, result).Inc()
	}
}

// newGuardrails creates the collectors and the label sets known in advance
// (so every series exists from the start, at 0).
func newGuardrails(reg *prometheus.Registry) *Guardrails {
	g := &Guardrails{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_analysis_decisions_total",
			Help: "Decisions about read statements, by verdict and by what decided (rules, planner, memory, valkey, override, fallback, llm)."},
			[]string{"verdict", "source"}),
		AnalysisSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pgproxy_analysis_duration_seconds",
			Help:    "Time to decide about a read statement, by what decided.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 3, 12)}, []string{"source"}),
		Routed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_routed_statements_total",
			Help: "Statements run, by node (fast, shunt)."}, []string{"node"}),
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_decision_cache_lookups_total",
			Help: "Decision cache lookups, by tier (memory, valkey) and result (hit, miss)."}, []string{"tier", "result"}),
		CacheErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_decision_cache_errors_total",
			Help: "Failed or skipped Valkey operations of the decision cache, by operation and kind."}, []string{"op", "kind"}),
		ValkeyUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgproxy_decision_cache_valkey_up",
			Help: "1 while the shared decision cache (Valkey) is used, 0 while it is unavailable or not configured."}),
		ReporterQueue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgproxy_reporter_queue_depth",
			Help: "Records waiting to be written to the reporter database, by table."}, []string{"table"}),
		ReporterWritten: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_reporter_written_total",
			Help: "Records written to the reporter database, by table."}, []string{"table"}),
		ReporterDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_reporter_dropped_total",
			Help: "Records given up (queue full, rejected by the database, left at shutdown), by table and reason."},
			[]string{"table", "reason"}),
		ReporterErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgproxy_reporter_write_errors_total",
			Help: "Failed connection attempts, schema checks and COPYs of the reporter (retried with backoff)."}),
		OverrideReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_overrides_reloads_total",
			Help: "Reloads of ANALYSIS_OVERRIDES_PATH, by result (ok, error: the previous overrides stay)."}, []string{"result"}),
		Overrides: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgproxy_overrides",
			Help: "Overrides in force."}),
	}
	reg.MustRegister(g.Decisions, g.AnalysisSeconds, g.Routed, g.CacheLookups, g.CacheErrors, g.ValkeyUp,
		g.ReporterQueue, g.ReporterWritten, g.ReporterDropped, g.ReporterErrors, g.OverrideReloads, g.Overrides)
	for s, source := range sources {
		for v, verdict := range verdicts {
			g.decided[v][s] = g.Decisions.WithLabelValues(verdict, source)
		}
		g.took[s] = g.AnalysisSeconds.WithLabelValues(source)
	}
	for n, node := range nodes {
		g.routed[n] = g.Routed.WithLabelValues(node)
	}
	for t, tier := range tiers {
		for r, result := range [2]string{"miss", "hit"} {
			g.lookups[t][r] = g.CacheLookups.WithLabelValues(tier, result)
		}
	}
	for _, t := range []string{"query_metrics", "query_issues"} {
		g.ReporterQueue.WithLabelValues(t)
		g.ReporterWritten.WithLabelValues(t)
		for _, r := range []string{"queue_full", "rejected", "closed"} {
			g.ReporterDropped.WithLabelValues(t, r)
		}
	}
	for _, r := range []string{"ok", "error"} {
		g.OverrideReloads.WithLabelValues(r)
	}
	return g
}

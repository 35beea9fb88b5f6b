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
}

// newGuardrails creates the collectors and the label sets known in advance
// (so every series exists from the start, at 0).
func newGuardrails(reg *prometheus.Registry) *Guardrails {
	g := &Guardrails{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_analysis_decisions_total",
			Help: "Decisions about read statements, by verdict and by what decided (rules, planner, memory, valkey, override, fallback)."},
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
	for _, v := range []string{"efficient", "inefficient"} {
		for _, s := range []string{"rules", "planner", "memory", "valkey", "override", "fallback"} {
			g.Decisions.WithLabelValues(v, s)
		}
	}
	for _, s := range []string{"rules", "planner", "memory", "valkey", "override", "fallback"} {
		g.AnalysisSeconds.WithLabelValues(s)
	}
	for _, n := range []string{"fast", "shunt"} {
		g.Routed.WithLabelValues(n)
	}
	for _, tier := range []string{"memory", "valkey"} {
		for _, r := range []string{"hit", "miss"} {
			g.CacheLookups.WithLabelValues(tier, r)
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

package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Masking are the collectors of data masking. Label values are bounded:
// outcomes and results, never SQL, table or column names.
type Masking struct {
	Statements   *prometheus.CounterVec // outcome: rewritten, refused, untouched
	Reloads      *prometheus.CounterVec // result: ok, error
	CatalogLoads *prometheus.CounterVec // result: ok, error
	WallMasked   prometheus.Counter
	Tables       prometheus.Gauge

	outcomes map[string]prometheus.Counter
}

// Decided counts a statement by what masking did with it.
func (m *Masking) Decided(outcome string) {
	if c, ok := m.outcomes[outcome]; ok {
		c.Inc()
		return
	}
	m.Statements.WithLabelValues(outcome).Inc()
}

func newMasking(reg *prometheus.Registry) *Masking {
	m := &Masking{
		Statements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_masking_statements_total",
			Help: "Statements seen by masking, by outcome (rewritten, refused, untouched)."}, []string{"outcome"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_masking_reloads_total",
			Help: "Reloads of MASKING_CONFIG_PATH, by result (ok, error: the previous configuration stays)."}, []string{"result"}),
		CatalogLoads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgproxy_masking_catalog_loads_total",
			Help: "Reads of a database's catalog for masking, by result (ok, error)."}, []string{"result"}),
		WallMasked: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgproxy_masking_result_values_masked_total",
			Help: "Values the result check masked because the server still described them as a masked column (0 while the rewrite does its work)."}),
		Tables: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgproxy_masking_tables",
			Help: "Tables named in the masking configuration in force."}),
	}
	m.outcomes = map[string]prometheus.Counter{}
	for _, o := range []string{"rewritten", "refused", "untouched"} {
		m.outcomes[o] = m.Statements.WithLabelValues(o)
	}
	for _, r := range []string{"ok", "error"} {
		m.Reloads.WithLabelValues(r)
		m.CatalogLoads.WithLabelValues(r)
	}
	reg.MustRegister(m.Statements, m.Reloads, m.CatalogLoads, m.WallMasked, m.Tables)
	return m
}

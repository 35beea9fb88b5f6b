package telemetry

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestGuardrailsCountTheirLabelSets checks that the statement path's
// counters, found by index, count the series of their label values, and
// that a value not known in advance still gets its own series.
func TestGuardrailsCountTheirLabelSets(t *testing.T) {
	g := NewMetrics().Guardrails
	g.Decided("inefficient", "planner", 0.01)
	g.Reused("efficient", "memory")
	g.Reused("efficient", "memory")
	g.Reused("efficient", "exempt")
	g.RoutedTo("shunt")
	g.RoutedTo("elsewhere")
	g.CacheLookup("valkey", true)
	g.CacheLookup("memory", false)
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(g.Decisions.WithLabelValues("inefficient", "planner")), 1, "inefficient/planner"},
		{testutil.ToFloat64(g.Decisions.WithLabelValues("efficient", "memory")), 2, "efficient/memory"},
		{testutil.ToFloat64(g.Decisions.WithLabelValues("efficient", "planner")), 0, "efficient/planner"},
		{testutil.ToFloat64(g.Decisions.WithLabelValues("efficient", "exempt")), 1, "efficient/exempt"},
		{testutil.ToFloat64(g.Routed.WithLabelValues("shunt")), 1, "shunt"},
		{testutil.ToFloat64(g.Routed.WithLabelValues("fast")), 0, "fast"},
		{testutil.ToFloat64(g.Routed.WithLabelValues("elsewhere")), 1, "elsewhere"},
		{testutil.ToFloat64(g.CacheLookups.WithLabelValues("valkey", "hit")), 1, "valkey hit"},
		{testutil.ToFloat64(g.CacheLookups.WithLabelValues("memory", "miss")), 1, "memory miss"},
		{testutil.ToFloat64(g.CacheLookups.WithLabelValues("memory", "hit")), 0, "memory hit"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(g.AnalysisSeconds); n != len(sources) {
		t.Errorf("%d analysis time series, want one per source (%d)", n, len(sources))
	}
}

package grafana_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// exposition is a small /metrics page in the text format, with one family
// of each kind the checks tell apart.
const exposition = `# HELP pgproxy_errors_total ErrorResponses.
# TYPE pgproxy_errors_total counter
pgproxy_errors_total{class="22"} 1
pgproxy_errors_total{class="28"} 2
# HELP pgproxy_client_connections_active Open.
# TYPE pgproxy_client_connections_active gauge
pgproxy_client_connections_active 3
# HELP pgproxy_decision_cache_lookups_total Lookups.
# TYPE pgproxy_decision_cache_lookups_total counter
pgproxy_decision_cache_lookups_total{tier="memory",result="hit"} 0
pgproxy_decision_cache_lookups_total{tier="memory",result="miss"} 0
# HELP pgproxy_statement_duration_seconds Latency.
# TYPE pgproxy_statement_duration_seconds histogram
pgproxy_statement_duration_seconds_bucket{le="0.1"} 1
pgproxy_statement_duration_seconds_bucket{le="+Inf"} 1
pgproxy_statement_duration_seconds_sum 0.01
pgproxy_statement_duration_seconds_count 1
# HELP go_gc_duration_seconds GC pauses.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 0.001
go_gc_duration_seconds_sum 0.1
go_gc_duration_seconds_count 10
`

func fixture(t *testing.T) families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// f is the filter every selector must carry.
const f = `job=~"$job", instance=~"$instance"`

// TestMetricNames checks the extraction: only vector selectors' metric
// names, not function names, aggregation keywords, label names, label
// values or strings that look like metric names.
func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`sum by (le) (rate(pgproxy_statement_duration_seconds_bucket{` + f + `, le!="rate"}[$__rate_interval]))`,
			[]string{"pgproxy_statement_duration_seconds_bucket"}},
		{`sum(rate(a_total{x="pgproxy_not_a_metric"}[5m])) / on (instance) group_left sum without (y) (b)`, []string{"a_total", "b"}},
		{`label_replace(up, "dst", "$1", "src", "(pgproxy_fake_total)") or vector(0)`, []string{"up"}},
		{`{__name__="by_name_total", job="x"} + count(count by (sum) (avg))`, []string{"avg", "by_name_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[${__rate_interval}]))) > bool 1`, []string{"h_bucket"}},
		{`max_over_time(g[1h:5m] offset 1d)`, []string{"g"}},
	}
	for _, c := range cases {
		got, err := metricNames(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: names %q, want %q", c.expr, got, c.want)
		}
	}
	for _, bad := range []string{`{__name__=~"pgproxy_.+"}`, `sum(rate(x[5m])`, `rate(x[$__bogus_interval])`, `x{job=$job}`} {
		if names, err := metricNames(bad); err == nil {
			t.Errorf("%s: want an error, got names %q", bad, names)
		}
	}
}

// TestCheckQuery proves each check of checkQuery can fail, starting with a
// metric that does not exist.
func TestCheckQuery(t *testing.T) {
	fams := fixture(t)
	good := []string{
		`sum by (class) (rate(pgproxy_errors_total{` + f + `}[$__rate_interval]))`,
		`sum(pgproxy_client_connections_active{` + f + `})`,
		`sum by (tier) (rate(pgproxy_decision_cache_lookups_total{` + f + `, result="hit"}[$__rate_interval])) / sum by (tier) (rate(pgproxy_decision_cache_lookups_total{` + f + `}[$__rate_interval]))`,
		`histogram_quantile(0.99, sum by (le, instance) (rate(pgproxy_statement_duration_seconds_bucket{` + f + `}[$__rate_interval])))`,
		`sum by (le) (increase(pgproxy_statement_duration_seconds_bucket{` + f + `}[$__rate_interval]))`,
		`sum(rate(pgproxy_statement_duration_seconds_sum{` + f + `}[5m])) / sum(rate(pgproxy_statement_duration_seconds_count{` + f + `}[5m]))`,
		`rate(go_gc_duration_seconds_count{` + f + `}[5m])`,
		`max by (quantile) (go_gc_duration_seconds{` + f + `})`,
	}
	for _, expr := range good {
		if p := checkQuery(expr, fams); len(p) > 0 {
			t.Errorf("%s: unexpected problems %q", expr, p)
		}
	}
	bad := []struct{ name, expr, want string }{
		{"bogus metric", `sum(rate(pgproxy_bogus_total{` + f + `}[5m]))`, "metric pgproxy_bogus_total is not exposed"},
		{"bogus metric in a binary expression", `sum(pgproxy_client_connections_active{` + f + `}) / sum(pgproxy_bogus{` + f + `})`, "metric pgproxy_bogus is not exposed"},
		{"bogus metric by __name__", `rate({__name__="pgproxy_bogus_total", ` + f + `}[5m])`, "metric pgproxy_bogus_total is not exposed"},
		{"counter without its _total", `rate(pgproxy_errors{` + f + `}[5m])`, "metric pgproxy_errors is not exposed"},
		{"histogram by its family name", `pgproxy_statement_duration_seconds{` + f + `}`, "is a histogram: query pgproxy_statement_duration_seconds_bucket"},
		{"_bucket of a summary", `sum by (le) (rate(go_gc_duration_seconds_bucket{` + f + `}[5m]))`, "summary, which has no _bucket series"},
		{"_bucket of a counter", `rate(pgproxy_errors_total_bucket{` + f + `}[5m])`, "pgproxy_errors_total is a counter, which has no _bucket series"},
		{"unknown label in a matcher", `rate(pgproxy_errors_total{` + f + `, sqlstate="22012"}[5m])`, `has no label "sqlstate"`},
		{"unknown label value", `rate(pgproxy_decision_cache_lookups_total{` + f + `, result="hti"}[5m])`, `no series of pgproxy_decision_cache_lookups_total has result="hti"`},
		{"unknown grouping label", `sum by (sqlstate) (rate(pgproxy_errors_total{` + f + `}[5m]))`, `has label "sqlstate"`},
		{"no job filter", `sum(pgproxy_client_connections_active{instance=~"$instance"})`, `lacks job=~"$job"`},
		{"no instance filter", `sum(pgproxy_client_connections_active{job=~"$job"})`, `lacks instance=~"$instance"`},
		{"raw counter", `sum(pgproxy_errors_total{` + f + `})`, "is a counter: use it inside rate()"},
		{"counter in the wrong range function", `avg_over_time(pgproxy_errors_total{` + f + `}[5m])`, "not avg_over_time()"},
		{"rate of a gauge", `rate(pgproxy_client_connections_active{` + f + `}[5m])`, "is a gauge: rate() is for counters"},
		{"quantile without le", `histogram_quantile(0.5, sum(rate(pgproxy_statement_duration_seconds_bucket{` + f + `}[5m])))`, "drops le"},
		{"quantile without le, by other labels", `histogram_quantile(0.5, sum by (instance) (rate(pgproxy_statement_duration_seconds_bucket{` + f + `}[5m])))`, "drops le"},
		{"without (le)", `histogram_quantile(0.5, sum without (le) (rate(pgproxy_statement_duration_seconds_bucket{` + f + `}[5m])))`, "drops le"},
		{"quantile of a counter", `histogram_quantile(0.5, sum by (le) (rate(pgproxy_statement_duration_seconds_count{` + f + `}[5m])))`, "histogram_quantile over pgproxy_statement_duration_seconds_count"},
		{"not PromQL", `sum(rate(pgproxy_errors_total{` + f + `}[5m])`, "does not parse as PromQL"},
		{"name by regular expression", `sum({__name__=~"pgproxy_.*", ` + f + `})`, "has no fixed metric name"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			p := checkQuery(c.expr, fams)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
				t.Errorf("%s: want a problem containing %q, have %q", c.expr, c.want, p)
			}
		})
	}
}

func TestCheckVariableQuery(t *testing.T) {
	fams := fixture(t)
	for _, q := range []string{
		`label_values(pgproxy_client_connections_active, job)`,
		`label_values(pgproxy_client_connections_active{job=~"$job"}, instance)`,
		`label_values(pgproxy_errors_total, class)`,
	} {
		if p := checkVariableQuery(q, fams); len(p) > 0 {
			t.Errorf("%s: unexpected problems %q", q, p)
		}
	}
	for q, want := range map[string]string{
		`label_values(pgproxy_bogus, job)`:             "metric pgproxy_bogus is not exposed",
		`label_values(pgproxy_errors_total, sqlstate)`: `has no label "sqlstate"`,
		`query_result(up)`:                             "is not label_values(selector, label)",
	} {
		p := checkVariableQuery(q, fams)
		if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("%s: want a problem containing %q, have %q", q, want, p)
		}
	}
}

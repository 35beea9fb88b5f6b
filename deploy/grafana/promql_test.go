package grafana_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// This file checks the PromQL of the dashboard's targets with Prometheus's
// own parser: every vector selector names a metric the scrape of a real
// pgproxy exposes, with labels it has, in the form its type calls for.

// families is one scrape of /metrics (harness.ReadMetrics), by family name.
type families = map[string]*dto.MetricFamily

// seriesKind is how a series name in a query relates to its family.
type seriesKind int

const (
	kindGauge   seriesKind = iota // a gauge or an untyped sample
	kindCounter                   // a counter, or the _sum/_count of a histogram or summary
	kindBucket                    // the _bucket series of a histogram
)

// resolve maps a series name used in a query to the family that exposes it
// in the text format: counters keep their _total name, while a histogram
// foo is exposed as foo_bucket, foo_sum and foo_count (and a summary as foo,
// foo_sum and foo_count).
func resolve(fams families, name string) (*dto.MetricFamily, seriesKind, error) {
	if f, ok := fams[name]; ok {
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return f, kindCounter, nil
		case dto.MetricType_GAUGE, dto.MetricType_UNTYPED, dto.MetricType_SUMMARY:
			return f, kindGauge, nil
		default:
			return nil, 0, fmt.Errorf("%s is a %s: query %[1]s_bucket, %[1]s_sum or %[1]s_count", name, strings.ToLower(f.GetType().String()))
		}
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := fams[base]
		if !ok {
			break
		}
		switch t := f.GetType(); {
		case t == dto.MetricType_HISTOGRAM && suffix == "_bucket":
			return f, kindBucket, nil
		case (t == dto.MetricType_HISTOGRAM || t == dto.MetricType_SUMMARY) && suffix != "_bucket":
			return f, kindCounter, nil
		default:
			return nil, 0, fmt.Errorf("%s: %s is a %s, which has no %s series", name, base, strings.ToLower(t.String()), suffix)
		}
	}
	return nil, 0, fmt.Errorf("metric %s is not exposed on /metrics", name)
}

// labelValues returns the values each label takes in a family's series;
// le is added for _bucket series and quantile for a summary's quantiles.
func labelValues(f *dto.MetricFamily, k seriesKind) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, m := range f.GetMetric() {
		for _, lp := range m.GetLabel() {
			if out[lp.GetName()] == nil {
				out[lp.GetName()] = map[string]bool{}
			}
			out[lp.GetName()][lp.GetValue()] = true
		}
	}
	if f.GetType() == dto.MetricType_SUMMARY && k == kindGauge {
		out["quantile"] = map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, q := range m.GetSummary().GetQuantile() {
				out["quantile"][fmt.Sprint(q.GetQuantile())] = true
			}
		}
	}
	if k == kindBucket {
		out["le"] = map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				out["le"][fmt.Sprint(b.GetUpperBound())] = true
			}
		}
	}
	return out
}

// targetLabels are added by Prometheus when it scrapes, so they are not on
// /metrics but every series has them.
var targetLabels = map[string]bool{"job": true, "instance": true}

// requiredFilters are the matchers every selector of a panel carries, so
// that the dashboard's job and instance variables apply to all panels.
var requiredFilters = map[string]string{"job": "$job", "instance": "$instance"}

// grafanaVariable matches Grafana's interval variables, which stand where
// PromQL has a duration; they are replaced by one before parsing.
// Template variables ($job) are only used inside label matcher strings.
var grafanaVariable = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)

var promqlParser = parser.NewParser(parser.Options{})

// parseQuery parses a target expression as Grafana would send it.
func parseQuery(expr string) (parser.Expr, error) {
	return promqlParser.ParseExpr(grafanaVariable.ReplaceAllString(expr, "5m"))
}

// metricNames returns the metric names an expression selects, sorted and
// unique: names of vector selectors only, never function names, keywords,
// label names or strings. A selector without a fixed name is an error.
func metricNames(expr string) ([]string, error) {
	e, err := parseQuery(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := selectorName(vs)
			if name == "" && bad == nil {
				bad = fmt.Errorf("selector %s has no fixed metric name", vs)
			}
			names = append(names, name)
		}
		return nil
	})
	if bad != nil {
		return nil, bad
	}
	sort.Strings(names)
	return slices.Compact(names), nil
}

// selectorName is the metric name of a selector: foo{...} or
// {__name__="foo"}; "" for a regular expression on __name__.
func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// rangeCounterFuncs are the functions that make sense of a counter's
// samples over a range.
var rangeCounterFuncs = map[string]bool{"rate": true, "irate": true, "increase": true}

// checkQuery returns what is wrong with a panel target's expression against
// a scrape: a parse error, a selector of a metric not in fams, a label
// matcher or grouping label the metric does not have, an equality matcher on
// a value no series has, a selector without the job and instance filters, a
// counter not inside rate()/irate()/increase() or a gauge inside one, a
// histogram_quantile over something else than _bucket series, and an
// aggregation of _bucket series that drops le.
func checkQuery(expr string, fams families) []string {
	e, err := parseQuery(expr)
	if err != nil {
		return []string{fmt.Sprintf("does not parse as PromQL: %v", err)}
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	// labelsOf remembers the label names of each selector that resolved,
	// for the grouping check below.
	labelsOf := map[*parser.VectorSelector]map[string]map[string]bool{}
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := selectorName(vs)
		if name == "" {
			add("selector %s has no fixed metric name", vs)
			return nil
		}
		for label, want := range requiredFilters {
			if !slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool {
				return m.Name == label && m.Type == labels.MatchRegexp && m.Value == want
			}) {
				add("%s: selector lacks %s=~%q (the dashboard's %s variable)", name, label, want, label)
			}
		}
		fam, kind, err := resolve(fams, name)
		if err != nil {
			add("%v", err)
			return nil
		}
		vals := labelValues(fam, kind)
		labelsOf[vs] = vals
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel || targetLabels[m.Name] {
				continue
			}
			if _, ok := vals[m.Name]; !ok {
				add("%s has no label %q (labels: %s)", name, m.Name, keys(vals))
				continue
			}
			if m.Type == labels.MatchEqual && !vals[m.Name][m.Value] {
				add("no series of %s has %s=%q (values: %s)", name, m.Name, m.Value, keys(vals[m.Name]))
			}
		}
		// The innermost function over a range of this selector, if any.
		fn := ""
		if len(path) >= 2 {
			if _, ok := path[len(path)-1].(*parser.MatrixSelector); ok {
				if c, ok := path[len(path)-2].(*parser.Call); ok {
					fn = c.Func.Name
				}
			}
		}
		switch {
		case kind != kindGauge && !rangeCounterFuncs[fn]:
			add("%s is a counter: use it inside rate(), irate() or increase(), not %s", name, orRaw(fn))
		case kind == kindGauge && rangeCounterFuncs[fn]:
			add("%s is a gauge: %s() is for counters", name, fn)
		}
		for _, anc := range path {
			switch a := anc.(type) {
			case *parser.AggregateExpr:
				if kind == kindBucket && slices.Contains(a.Grouping, "le") == a.Without {
					add("%s: the %s above it drops le, which histogram buckets need: group by (le, ...)", name, a.Op)
				}
			case *parser.Call:
				if a.Func.Name == "histogram_quantile" && kind != kindBucket {
					add("histogram_quantile over %s, which is not a histogram's _bucket series", name)
				}
			}
		}
		return nil
	})
	// Every label an aggregation keeps must exist below it (selectors that
	// did not resolve are reported above already).
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		a, ok := n.(*parser.AggregateExpr)
		if !ok || a.Without {
			return nil
		}
		have := map[string]bool{}
		var names []string // of the selectors below that resolved
		parser.Inspect(a.Expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && labelsOf[vs] != nil {
				names = append(names, selectorName(vs))
				for l := range labelsOf[vs] {
					have[l] = true
				}
			}
			return nil
		})
		for _, g := range a.Grouping {
			if !have[g] && !targetLabels[g] && len(names) > 0 {
				add("%s by (%s): no series of %s has label %q", a.Op, strings.Join(a.Grouping, ", "), strings.Join(names, ", "), g)
			}
		}
		return nil
	})
	return problems
}

func orRaw(fn string) string {
	if fn == "" {
		return "as a raw value"
	}
	return fn + "()"
}

func keys[V any](m map[string]V) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// labelValuesQuery matches a Grafana variable query label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// checkVariableQuery checks a query variable's label_values(selector, label)
// against a scrape: the selector's metric exists and has the label (or the
// label is a target label).
func checkVariableQuery(q string, fams families) []string {
	m := labelValuesQuery.FindStringSubmatch(q)
	if m == nil {
		return []string{fmt.Sprintf("variable query %q is not label_values(selector, label)", q)}
	}
	e, err := parseQuery(m[1])
	if err != nil {
		return []string{fmt.Sprintf("variable query %q: selector does not parse: %v", q, err)}
	}
	vs, ok := e.(*parser.VectorSelector)
	if !ok {
		return []string{fmt.Sprintf("variable query %q: %s is not a selector", q, m[1])}
	}
	fam, kind, err := resolve(fams, selectorName(vs))
	if err != nil {
		return []string{fmt.Sprintf("variable query %q: %v", q, err)}
	}
	if _, ok := labelValues(fam, kind)[m[2]]; !ok && !targetLabels[m[2]] {
		return []string{fmt.Sprintf("variable query %q: %s has no label %q", q, selectorName(vs), m[2])}
	}
	return nil
}

package harness

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a Prometheus /metrics page.
type Metrics map[string]*dto.MetricFamily

// ReadMetrics scrapes url (a proxy's HealthURL("/metrics")).
func ReadMetrics(url string) (Metrics, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	return Metrics(fams), nil
}

// Sum returns the sum of the series of a metric whose labels include
// labels (a histogram counts its observations), and whether the metric
// exists at all.
func (m Metrics) Sum(name string, labels map[string]string) (float64, bool) {
	fam, ok := m[name]
	if !ok {
		return 0, false
	}
	var sum float64
	for _, mt := range fam.GetMetric() {
		if !hasLabels(mt, labels) {
			continue
		}
		switch {
		case mt.Counter != nil:
			sum += mt.Counter.GetValue()
		case mt.Gauge != nil:
			sum += mt.Gauge.GetValue()
		case mt.Histogram != nil:
			sum += float64(mt.Histogram.GetSampleCount())
		case mt.Untyped != nil:
			sum += mt.Untyped.GetValue()
		}
	}
	return sum, true
}

func hasLabels(mt *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range mt.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ParseSeries reads a selector such as
// pgproxy_errors_total{class="42",x="y"} into a name and labels.
func ParseSeries(s string) (string, map[string]string, error) {
	name, rest, ok := strings.Cut(s, "{")
	labels := map[string]string{}
	if !ok {
		return s, labels, nil
	}
	rest, ok = strings.CutSuffix(rest, "}")
	if !ok {
		return "", nil, fmt.Errorf("selector %q: missing }", s)
	}
	for _, part := range strings.Split(rest, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return "", nil, fmt.Errorf("selector %q: %q is not name=\"value\"", s, part)
		}
		labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return name, labels, nil
}

// Names returns the metric names of the scrape, sorted.
func (m Metrics) Names() []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

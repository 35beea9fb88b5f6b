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
// labels (a histogram or summary counts its observations), and whether the metric
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
		case mt.Summary != nil:
			sum += float64(mt.Summary.GetSampleCount())
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
				break
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
	if !ok {
		return s, map[string]string{}, nil
	}
	rest, ok = strings.CutSuffix(rest, "}")
	if !ok {
		return "", nil, fmt.Errorf("selector %q: missing }", s)
	}
	labels, err := ParseLabels(rest)
	if err != nil {
		return "", nil, fmt.Errorf("selector %q: %w", s, err)
	}
	return name, labels, nil
}

// ParseLabels reads k="v" pairs separated by commas, as the text format
// writes them (values without escaped quotes; a value may hold a comma).
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimPrefix(strings.TrimSpace(s), ",") {
		k, rest, ok := strings.Cut(s, "=")
		rest = strings.TrimLeft(rest, " ")
		if !ok || !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("bad label list %q", s)
		}
		end := strings.Index(rest[1:], `"`)
		if end < 0 {
			return nil, fmt.Errorf("unterminated label value in %q", s)
		}
		out[strings.TrimSpace(k)] = rest[1 : 1+end]
		s = rest[2+end:]
	}
	return out, nil
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

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// registerMetricSteps defines the steps that read the proxy's Prometheus /metrics page.
func registerMetricSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^the metric (\S+) is (\d+)$`, func(series string, want float64) error {
		return w.checkMetric(series, func(v float64) bool { return v == want }, fmt.Sprintf("= %g", want))
	})
	sc.Step(`^the metric (\S+) is at least (\d+)$`, func(series string, want float64) error {
		return w.checkMetric(series, func(v float64) bool { return v >= want }, fmt.Sprintf(">= %g", want))
	})
}

// checkMetric reads /metrics (retrying for a second, since some counters move just after the
// client saw the effect) and compares the sum of the series matching series.
func (w *world) checkMetric(series string, ok func(float64) bool, want string) error {
	sel, err := parseSelector(series)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		page, err := w.metricsPage()
		if err != nil {
			return err
		}
		v, found := sel.sum(page)
		if found && ok(v) {
			return nil
		}
		if time.Now().After(deadline) {
			if !found {
				return fmt.Errorf("no series %s on /metrics:\n%s", series, grepMetrics(page, sel.name))
			}
			return fmt.Errorf("%s = %g, want %s\n%s", series, v, want, grepMetrics(page, sel.name))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *world) metricsPage() (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(w.proxy.HealthURL("/metrics"))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(b), nil
}

// selector is a metric name with label equalities, written as in PromQL: name{k="v",...}.
type selector struct {
	name   string
	labels map[string]string
}

func parseSelector(s string) (selector, error) {
	name, labels, err := harness.ParseSeries(s)
	if err != nil {
		return selector{}, fmt.Errorf("metric selector: %w", err)
	}
	return selector{name: name, labels: labels}, nil
}

// sum adds the values of the samples of page that match the selector.
func (sel selector) sum(page string) (float64, bool) {
	var total float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		head, val := line[:i], line[i+1:]
		name, rest, hasLabels := strings.Cut(head, "{")
		if name != sel.name {
			continue
		}
		labels := map[string]string{}
		if hasLabels {
			var err error
			if labels, err = harness.ParseLabels(strings.TrimSuffix(rest, "}")); err != nil {
				continue
			}
		}
		match := true
		for k, v := range sel.labels {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		total += f
		found = true
	}
	return total, found
}

// grepMetrics returns the lines of page about the metric family name, for failure messages.
func grepMetrics(page, name string) string {
	var out []string
	base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_count"), "_sum"), "_bucket")
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, base) && !strings.Contains(l, "_bucket") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

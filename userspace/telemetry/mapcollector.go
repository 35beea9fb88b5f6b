package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// MapCollector exports a set of named counters read at scrape time (the
// eBPF programs' per-CPU counters) as prefix+name.
type MapCollector struct {
	prefix string
	help   string
	read   func() (map[string]uint64, error)
}

// NewMapCollector returns a collector calling read on every scrape.
func NewMapCollector(prefix, help string, read func() (map[string]uint64, error)) *MapCollector {
	return &MapCollector{prefix: prefix, help: help, read: read}
}

// Describe sends nothing: the counter names are known only when read
// (an unchecked collector).
func (c *MapCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the counters; a failed read yields no samples.
func (c *MapCollector) Collect(ch chan<- prometheus.Metric) {
	vals, err := c.read()
	if err != nil {
		return
	}
	for name, v := range vals {
		desc := prometheus.NewDesc(c.prefix+name+"_total", c.help, nil, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v))
	}
}

package analysis

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkJudge measures Judge end to end on a warm pool (the planner has
// no cache of its own: every call plans), and reports the median and 99th
// percentile latency of the calls.
func BenchmarkJudge(b *testing.B) {
	pool := proxyPool(b, plannerDB(b), 4)
	p := NewPlanner(pool, PlannerOptions{})
	for _, c := range []struct {
		name, sql string
		oids      []uint32
	}{
		{"simple", "SELECT * FROM pl_big WHERE id = 42", nil},
		{"parameterised", "SELECT * FROM pl_big WHERE id = $1", []uint32{23}},
		{"parameterised_inferred", "SELECT * FROM pl_big WHERE id = $1", nil},
		{"seq_scan_with_facts", "SELECT * FROM pl_big WHERE note = 'n1'", nil},
		{"join", "SELECT s.name, b.note, m.v FROM pl_small s JOIN pl_big b ON b.id = s.id JOIN pl_mid m ON m.id = b.grp WHERE s.id = $1", nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			if _, err := p.Judge(ctx, c.sql, c.oids); err != nil { // warm the connection
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, 1024)
			for b.Loop() {
				start := time.Now()
				if _, err := p.Judge(ctx, c.sql, c.oids); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			pct := func(q float64) float64 {
				return float64(lat[min(int(q*float64(len(lat))), len(lat)-1)].Microseconds())
			}
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
		})
	}
}

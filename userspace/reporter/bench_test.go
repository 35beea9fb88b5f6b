package reporter

import (
	"context"
	"testing"
	"time"
)

func sampleMetric() Metric {
	return Metric{
		RecordedAt: time.Now(), Fingerprint: "a1b2c3d4e5f60718", Identity: "alice@example.com",
		User: "svc_app", Database: "shop", Mode: "block", Action: "allow", Verdict: "efficient",
		DecisionSource: "memory", Analysis: 20 * time.Microsecond, Backend: 400 * time.Microsecond,
		Total: 450 * time.Microsecond, Rows: 1, Node: "primary", ConnID: 42,
	}
}

// unconnected returns a reporter whose writer never connects, with a goroutine
// taking records from the queue in its place when drain is set.
func unconnected(b *testing.B, drain bool) *Reporter {
	opts := fastOptions(refusedURL(b), nil)
	opts.QueueSize = 1 << 16
	opts.Backoff = Backoff{Min: time.Hour, Max: time.Hour}
	r := start(b, opts)
	if drain {
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-r.metrics:
				case <-stop:
					return
				}
			}
		}()
		b.Cleanup(func() { close(stop) })
	}
	return r
}

// BenchmarkMetric is the statement path's cost of Metric: a record into a
// queue that a consumer empties.
func BenchmarkMetric(b *testing.B) {
	r := unconnected(b, true)
	m := sampleMetric()
	b.ReportAllocs()
	for b.Loop() {
		r.Metric(m)
	}
}

// BenchmarkMetricNow is Metric with RecordedAt left for it to fill in.
func BenchmarkMetricNow(b *testing.B) {
	r := unconnected(b, true)
	m := sampleMetric()
	m.RecordedAt = time.Time{}
	b.ReportAllocs()
	for b.Loop() {
		r.Metric(m)
	}
}

// BenchmarkMetricParallel is Metric from many sessions at once.
func BenchmarkMetricParallel(b *testing.B) {
	r := unconnected(b, true)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		m := sampleMetric()
		for pb.Next() {
			r.Metric(m)
		}
	})
}

// BenchmarkMetricQueueFull is Metric while the database is down and the queue
// is full: the record is dropped and counted.
func BenchmarkMetricQueueFull(b *testing.B) {
	r := unconnected(b, false)
	m := sampleMetric()
	for range cap(r.metrics) {
		r.Metric(m)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Metric(m)
	}
	if r.Stats().Metrics.QueueFull == 0 {
		b.Fatal("nothing dropped")
	}
}

// BenchmarkWrite is the writer's throughput into PostgreSQL: records written
// per second with the default batch size (ns/op is per record, end to end).
func BenchmarkWrite(b *testing.B) {
	_, _, url := newDatabase(b)
	opts := fastOptions(url, nil)
	opts.QueueSize = 100_000
	r := start(b, opts)
	for !r.Stats().Connected {
		time.Sleep(10 * time.Millisecond)
	}
	m := sampleMetric()
	m.QueryText = "SELECT * FROM orders WHERE customer_id = 42 AND status = 'open'"
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for r.Stats().Metrics.Queued > r.opts.QueueSize-r.opts.BatchSize {
			time.Sleep(time.Millisecond)
		}
		m.ConnID = uint64(i)
		r.Metric(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if s := r.Stats().Metrics; s.Written != uint64(b.N) {
		b.Fatalf("written %d of %d (%+v)", s.Written, b.N, s)
	}
}

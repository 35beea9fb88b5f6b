package cache

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
)

// BenchmarkGetMemoryHit is the query path for a shape this process has judged before. About
// a third of it is time.Now (for the entry's expiry), which is slow on some virtual machines.
func BenchmarkGetMemoryHit(b *testing.B) {
	var hits atomic.Int64 // a hook that counts, as the daemon's would
	c := open(b, Options{Hooks: Hooks{OnLookup: func(_ analysis.Source, hit bool) {
		if hit {
			hits.Add(1)
		}
	}}}, nil)
	ctx := context.Background()
	c.Set(ctx, "shop", "5f3e8c1a2b4d6e70", decision("x"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := c.Get(ctx, "shop", "5f3e8c1a2b4d6e70"); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkGetValkeyHit is the query path for a shape another process judged: a memory miss,
// then GET and PTTL in one round trip to a local redis-server, decoding, and the copy into
// memory (which is removed again before the next iteration). It reports the median and 99th
// percentile of single calls.
func BenchmarkGetValkeyHit(b *testing.B) {
	addr := harness.StartRedis(b)
	// A second, not 25 ms: on a loaded machine a slow read would be a miss, and this measures
	// how long reads take.
	c := open(b, Options{ValkeyURL: "redis://" + addr, OpTimeout: time.Second}, nil)
	waitReady(b, c)
	ctx := context.Background()
	c.Set(ctx, "shop", "5f3e8c1a2b4d6e70", decision("sequential scan of public.orders, about 2,000,000 rows"))
	flush(b, c)
	k := memKey{"shop", "5f3e8c1a2b4d6e70"}
	var samples []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		c.mem.lru.Remove(k)
		start := time.Now()
		_, src, ok := c.Get(ctx, "shop", "5f3e8c1a2b4d6e70")
		samples = append(samples, time.Since(start))
		if !ok || src != analysis.SourceValkey {
			b.Fatalf("Get = %q, %v", src, ok)
		}
	}
	slices.Sort(samples)
	at := func(q float64) float64 {
		return float64(samples[int(q*float64(len(samples)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

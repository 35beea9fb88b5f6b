package analysis_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
	"github.com/pgproxy/pgproxy/userspace/cache"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// BenchmarkDecide measures Analyzer.Decide end to end, wired as
// cmd/pgproxy/guardrails.go wires it (cache.Tiered, metadata.Cache and
// Planner on a pool of the backend account, default thresholds and
// ANALYSIS_TIMEOUT), on the planner tests' PostgreSQL:
//
//   - uncached/rules: every iteration a new shape (a new table alias, so a
//     new fingerprint) that a rule decides (unfiltered_read of pl_big); the
//     decision cache misses, the table facts are warm (as they are once a
//     table has been seen: METADATA_CACHE_TTL is an hour).
//   - uncached/planner: new shapes that pass the rules; the planner plans
//     them (EXPLAIN on the proxy's own connection) and finds an index scan.
//   - hit/memory: one shape decided before, found in the in-process tier.
//   - hit/valkey: shapes decided before, found in Valkey (a real
//     redis-server): the in-process tier holds one decision
//     (ANALYSIS_CACHE_SIZE=1) and the iterations go round several shapes,
//     so each lookup misses memory and reads Valkey (GET and PTTL in one
//     round trip, decoding, the copy into memory).
//
// Parsing and fingerprinting (sqlparse) happen before the timer and are not
// in ns/op nor in the percentiles; the planner finds its statement's parse
// in the shared parser cache, as in the program. Each sub-benchmark also
// reports the median and 99th percentile of single calls (p50-µs, p99-µs).
//
//	go test -run XXX -bench BenchmarkDecide -benchtime=2000x ./userspace/analysis/
func BenchmarkDecide(b *testing.B) {
	// One parser for the whole run, big enough to keep every statement:
	// Judge's own parse of a new text then hits the cache, as it does in
	// the program, where the proxy parsed the statement first.
	parser := sqlparse.NewParser(1 << 17)
	needPrograms(b, "initdb", "postgres")
	b.Run("uncached", func(b *testing.B) {
		r := newRig(b, rigOptions{parser: parser, timeout: 500 * time.Millisecond})
		warm(b, r)
		b.Run("rules", func(b *testing.B) {
			benchShapes(b, r, analysis.SourceRules, "SELECT x%[1]d.payload FROM pl_big x%[1]d")
		})
		b.Run("planner", func(b *testing.B) {
			benchShapes(b, r, analysis.SourcePlanner, "SELECT x%[1]d.payload FROM pl_big x%[1]d WHERE x%[1]d.id = 42")
		})
	})
	b.Run("hit", func(b *testing.B) {
		b.Run("memory", func(b *testing.B) {
			r := newRig(b, rigOptions{parser: parser, timeout: 500 * time.Millisecond})
			benchHits(b, r, 1, analysis.SourceMemory)
		})
		b.Run("valkey", func(b *testing.B) {
			needPrograms(b, "redis-server")
			addr := harness.StartRedis(b)
			// OpTimeout 1s, not the default 25 ms: on a loaded machine a slow
			// read would be a miss, and this measures how long reads take.
			r := newRig(b, rigOptions{parser: parser, timeout: 500 * time.Millisecond,
				cache: cache.Options{ValkeyURL: "redis://" + addr, OpTimeout: time.Second, MemorySize: 1}})
			harness.Eventually(b, 10*time.Second, "valkey available", r.tiered.Available)
			benchHits(b, r, 8, analysis.SourceValkey)
		})
	})
}

// needPrograms skips (fails in CI) when a program is missing, and prints
// why even without -v (go test shows a skipped benchmark's log only with -v).
func needPrograms(b *testing.B, programs ...string) {
	b.Helper()
	for _, p := range programs {
		if _, err := harness.LookBin(p); err != nil {
			fmt.Printf("%s: skipped: program %q not found (run hack/ensure-deps.sh)\n", b.Name(), p)
			harness.Unavailable(b, "program %q not found", p)
		}
	}
}

// shapeSeq numbers the shapes of the whole run: the benchmark function runs
// several times (b.N = 1 first), and each statement must be new to the cache.
var shapeSeq atomic.Int64

// warm reads pl_big's facts and opens the pool's connections.
func warm(b *testing.B, r *rig) {
	b.Helper()
	d := r.a.Decide(context.Background(), r.request(harness.TestDB, "SELECT * FROM pl_big WHERE id = 1"))
	if d.Source != analysis.SourcePlanner {
		b.Fatalf("warm-up decision from %s: %s", d.Source, d.Reason)
	}
}

// benchShapes decides b.N new shapes made from format (%[1]d: a number
// never used before), each of which must be decided by source.
func benchShapes(b *testing.B, r *rig, source analysis.Source, format string) {
	reqs := make([]analysis.Request, b.N)
	for i := range reqs {
		reqs[i] = r.request(harness.TestDB, fmt.Sprintf(format, shapeSeq.Add(1)))
		reqs[i].Parsed.Fingerprint()
	}
	ctx := context.Background()
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		d := r.a.Decide(ctx, reqs[i])
		lat[i] = time.Since(start)
		if d.Source != source {
			b.Fatalf("%s: decided by %s (origin %s), want %s: %s", reqs[i].Parsed.SQL(), d.Source, d.Origin, source, d.Reason)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// benchHits decides shapes shapes once, then b.N times round them; each
// lookup must be answered by source. With a memory tier of one decision and
// several shapes, the one in memory is never the one asked for next.
func benchHits(b *testing.B, r *rig, shapes int, source analysis.Source) {
	ctx := context.Background()
	reqs := make([]analysis.Request, shapes)
	for i := range reqs {
		reqs[i] = r.request(harness.TestDB, fmt.Sprintf("SELECT h%[1]d.payload FROM pl_big h%[1]d", i))
		reqs[i].Parsed.Fingerprint()
		if d := r.a.Decide(ctx, reqs[i]); d.Source != analysis.SourceRules && d.Source != source {
			b.Fatalf("seeding: decided by %s: %s", d.Source, d.Reason)
		}
	}
	flushCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.tiered.Flush(flushCtx); err != nil {
		b.Fatal(err)
	}
	calls := r.calls.Load()
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := reqs[i%len(reqs)]
		start := time.Now()
		d := r.a.Decide(ctx, req)
		lat[i] = time.Since(start)
		if d.Source != source || d.Origin != analysis.SourceRules {
			b.Fatalf("%s: decided by %s (origin %s), want %s", req.Parsed.SQL(), d.Source, d.Origin, source)
		}
	}
	b.StopTimer()
	if r.calls.Load() != calls {
		b.Fatalf("a cache hit ran an analysis")
	}
	reportPercentiles(b, lat)
}

// reportPercentiles reports the median and 99th percentile of single calls.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	lat = slices.Clone(lat)
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

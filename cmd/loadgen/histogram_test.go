package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRangeContainsValue(t *testing.T) {
	values := []uint64{0, 1, 127, 255, 256, 257, 511, 512, 1000, 123456, 1 << 40, math.MaxUint64 - 1, math.MaxUint64}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, r.Uint64()>>r.IntN(64))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= bucketCount {
			t.Fatalf("bucketOf(%d) = %d, outside [0,%d)", v, i, bucketCount)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d with range [%d,%d]", v, i, lo, hi)
		}
		if width := hi - lo; v >= subBucketCount && float64(width)/float64(lo) > 1.0/subBucketHalf {
			t.Fatalf("bucket %d [%d,%d] wider than 1/%d of its value", i, lo, hi, subBucketHalf)
		}
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	_, prevHi := bucketRange(0)
	for i := 1; i < bucketCount; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps back to %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
	}
	if prevHi != math.MaxUint64 {
		t.Fatalf("last bucket ends at %d, want MaxUint64", prevHi)
	}
}

// exactPercentile is the nearest-rank percentile of sorted values.
func exactPercentile(sorted []time.Duration, p float64) time.Duration {
	rank := max(int(math.Ceil(p/100*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

func TestPercentilesMatchSortedSample(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := newHistogram()
	var all []time.Duration
	for range 200000 {
		// log-normal around 300µs with a long tail, like query latencies
		d := time.Duration(math.Exp(r.NormFloat64()*0.8) * float64(300*time.Microsecond))
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, p := range []float64{0, 1, 50, 90, 95, 99, 99.9, 100} {
		got, want := h.Percentile(p), exactPercentile(all, p)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 1.0/subBucketHalf {
			t.Errorf("p%v = %v, exact %v (error %.3f%%)", p, got, want, rel*100)
		}
		if got < want {
			t.Errorf("p%v = %v below the exact value %v; buckets report their highest value", p, got, want)
		}
	}
	if h.Max() != all[len(all)-1] || h.Min() != all[0] {
		t.Errorf("min/max = %v/%v, want %v/%v", h.Min(), h.Max(), all[0], all[len(all)-1])
	}
	if h.Count() != uint64(len(all)) {
		t.Errorf("count %d, want %d", h.Count(), len(all))
	}
}

func TestPercentileSmallSamples(t *testing.T) {
	h := newHistogram()
	if h.Percentile(50) != 0 || h.Max() != 0 || h.Min() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	h.Record(42 * time.Millisecond)
	for _, p := range []float64{-5, 0, 50, 99, 100, 150} {
		if got := h.Percentile(p); got != 42*time.Millisecond {
			t.Errorf("one value: p%v = %v, want the value itself", p, got)
		}
	}
	h = newHistogram()
	for _, d := range []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10} { // exact below 256 ns
		h.Record(d)
	}
	for p, want := range map[float64]time.Duration{10: 1, 50: 5, 51: 6, 95: 10, 100: 10} {
		if got := h.Percentile(p); got != want {
			t.Errorf("1..10: p%v = %v, want %v", p, got, want)
		}
	}
	h.Record(-time.Second)
	if h.Min() != 0 {
		t.Errorf("negative duration recorded as %v, want 0", h.Min())
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a, b, both := newHistogram(), newHistogram(), newHistogram()
	for i := range 50000 {
		d := time.Duration(r.Int64N(int64(50 * time.Millisecond)))
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		both.Record(d)
	}
	a.Merge(b)
	for _, p := range []float64{50, 95, 99, 100} {
		if a.Percentile(p) != both.Percentile(p) {
			t.Errorf("p%v: merged %v, together %v", p, a.Percentile(p), both.Percentile(p))
		}
	}
	if a.Count() != both.Count() || a.Min() != both.Min() || a.Max() != both.Max() {
		t.Error("merged count/min/max differ")
	}
	empty := newHistogram()
	empty.Merge(newHistogram())
	if empty.Count() != 0 || empty.Min() != 0 {
		t.Error("merging two empty histograms must stay empty")
	}
}

func TestHistogramMemoryIsFixed(t *testing.T) {
	h := newHistogram()
	for i := range 1_000_000 {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	if len(h.counts) != bucketCount || bucketCount > 8192 {
		t.Fatalf("histogram holds %d counters, want a fixed %d (< 8192)", len(h.counts), bucketCount)
	}
}

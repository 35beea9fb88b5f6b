package main

import (
	"math"
	"math/bits"
	"time"
)

// subBucketBits sets the precision of histogram: each power-of-two range of values is split
// into 2^(subBucketBits-1) equal buckets, so a recorded value is off by at most
// 1/2^(subBucketBits-1) of itself (under 0.8% with 8 bits).
const subBucketBits = 8

const (
	subBucketCount = 1 << subBucketBits // values below this have a bucket each
	subBucketHalf  = subBucketCount / 2 // buckets per power of two above that
	// bucketCount covers every uint64: the highest value has bits.Len64 = 64.
	bucketCount = (64-subBucketBits)*subBucketHalf + subBucketCount
)

// histogram counts durations (in nanoseconds) in log-linear buckets, the scheme HDR histograms
// use: exact below 256 ns, then a fixed number of buckets per power of two. Its memory is
// fixed (bucketCount counters) whatever the number of values. The zero value is not ready;
// use newHistogram. A histogram is not safe for concurrent use: each worker keeps its own
// and they are merged at the end.
type histogram struct {
	counts []uint64
	total  uint64
	min    uint64
	max    uint64
}

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, bucketCount), min: math.MaxUint64}
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < subBucketCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBucketBits // >= 1; v>>shift keeps subBucketBits bits
	return shift*subBucketHalf + int(v>>shift)
}

// bucketRange returns the lowest and highest value that fall into bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subBucketCount {
		return uint64(i), uint64(i)
	}
	shift := i/subBucketHalf - 1
	mantissa := uint64(i - shift*subBucketHalf)
	lo = mantissa << shift
	return lo, lo + (uint64(1) << shift) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.total++
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Merge adds every value of o to h.
func (h *histogram) Merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of recorded values.
func (h *histogram) Count() uint64 { return h.total }

// Max returns the largest recorded value exactly (0 when empty).
func (h *histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest recorded value exactly (0 when empty).
func (h *histogram) Min() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Percentile returns the value at or below which p percent of the recorded values lie (the
// nearest-rank definition), as the highest value of its bucket, clamped to the exact minimum
// and maximum. p is clamped to [0, 100]; an empty histogram gives 0.
func (h *histogram) Percentile(p float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := uint64(math.Ceil(p / 100 * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

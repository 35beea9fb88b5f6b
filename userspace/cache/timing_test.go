package cache

import (
	"sync"
	"testing"
	"time"
)

// Timing assertions on a shared, loaded 2-CPU machine: a call is held to its bound unless
// the machine did not run this process meanwhile. A canary goroutine sleeps 1 ms at a time
// and notes every wake-up that came more than 5 ms late; a call that overran its bound is
// excused when the canary's late time within the call covers the overrun. Nothing excuses a
// call longer than hardBound: that is a call that blocked.
const hardBound = time.Second

type span struct{ from, to time.Time }

var stallWatch struct {
	once   sync.Once
	mu     sync.Mutex
	stalls []span
	last   time.Time // the latest wake-up of the canary
}

func startStallWatch() { stallWatch.once.Do(func() { go canary() }) }

// canary runs for the rest of the test binary.
func canary() {
	for {
		start := time.Now()
		time.Sleep(time.Millisecond)
		now := time.Now()
		stallWatch.mu.Lock()
		if late := now.Sub(start) - time.Millisecond; late > 5*time.Millisecond {
			stallWatch.stalls = append(stallWatch.stalls, span{start.Add(time.Millisecond), now})
		}
		stallWatch.last = now
		stallWatch.mu.Unlock()
	}
}

// stalledWithin returns how long the process was not run between from and to, as far as
// the canary saw; it first waits (up to 2 s) for a canary wake-up after to.
func stalledWithin(from, to time.Time) time.Duration {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		stallWatch.mu.Lock()
		seen := stallWatch.last.After(to)
		stallWatch.mu.Unlock()
		if seen {
			break
		}
	}
	stallWatch.mu.Lock()
	defer stallWatch.mu.Unlock()
	var total time.Duration
	for _, s := range stallWatch.stalls {
		lo, hi := maxTime(s.from, from), minTime(s.to, to)
		if hi.After(lo) {
			total += hi.Sub(lo)
		}
	}
	return total
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// timing times calls and judges them when the test ends. It is safe for concurrent use.
type timing struct {
	t       testing.TB
	mu      sync.Mutex
	calls   int
	slowest time.Duration
	over    []overrun
}

type overrun struct {
	what   string
	bound  time.Duration
	window span
}

func newTiming(t testing.TB) *timing {
	startStallWatch()
	tm := &timing{t: t}
	t.Cleanup(tm.judge)
	return tm
}

// call runs fn and returns how long it took; a call over bound is judged at the end.
func (tm *timing) call(what string, bound time.Duration, fn func()) time.Duration {
	start := time.Now()
	fn()
	end := time.Now()
	d := end.Sub(start)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.calls++
	tm.slowest = max(tm.slowest, d)
	if d > bound {
		tm.over = append(tm.over, overrun{what, bound, span{start, end}})
	}
	return d
}

func (tm *timing) judge() {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	excused := 0
	for _, o := range tm.over {
		d := o.window.to.Sub(o.window.from)
		stalled := stalledWithin(o.window.from, o.window.to)
		switch {
		case d > hardBound:
			tm.t.Errorf("%s took %s: it blocked (nothing excuses more than %s)", o.what, d, hardBound)
		case d-stalled > o.bound:
			tm.t.Errorf("%s took %s (bound %s; the process was not run for %s of it)", o.what, d, o.bound, stalled)
		default:
			excused++
			tm.t.Logf("%s took %s, over its bound %s, but the process was not run for %s of it", o.what, d, o.bound, stalled)
		}
	}
	tm.t.Logf("%d timed calls, slowest %s, %d over their bound excused by stalls", tm.calls, tm.slowest, excused)
}

package session

import (
	"sync"
	"time"
)

// pendingSync is one outstanding Query, Sync or FunctionCall.
type pendingSync struct {
	sent time.Time
	// dropReady holds back the backend's ReadyForQuery: it answers a Sync or
	// Query the proxy put in place of a refused Parse, which the client, in
	// the middle of its pipeline, does not expect.
	dropReady bool
	// beforeRaise marks the Sync sent ahead of a refusal's raise.
	beforeRaise bool
	// raise marks the Query that raises a refusal.
	raise bool
}

// syncQueue holds outstanding sync points in order. It is bounded: a client
// that pipelines more than it holds waits (backpressure) instead of growing
// the proxy's memory.
type syncQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	ring   [256]pendingSync
	head   int
	n      int
	closed bool
}

func (q *syncQueue) push(p pendingSync) {
	q.mu.Lock()
	if q.cond == nil {
		q.cond = sync.NewCond(&q.mu)
	}
	for q.n == len(q.ring) && !q.closed {
		q.cond.Wait()
	}
	if !q.closed {
		q.ring[(q.head+q.n)%len(q.ring)] = p
		q.n++
	}
	q.mu.Unlock()
}

// pop returns the oldest entry, or false when none is outstanding.
func (q *syncQueue) pop() (pendingSync, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return pendingSync{}, false
	}
	p := q.ring[q.head]
	q.ring[q.head] = pendingSync{}
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	if q.cond != nil {
		q.cond.Signal()
	}
	return p, true
}

// headIsRaise reports whether the oldest entry is a refusal's raise.
func (q *syncQueue) headIsRaise() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n > 0 && q.ring[q.head].raise
}

// close releases a pusher waiting for room; later pushes are dropped.
func (q *syncQueue) close() {
	q.mu.Lock()
	q.closed = true
	if q.cond != nil {
		q.cond.Broadcast()
	}
	q.mu.Unlock()
}

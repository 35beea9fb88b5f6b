package session

import (
	"sync"
	"time"
)

// pendingSync is one outstanding Query, Sync or FunctionCall: when it was
// sent, and, for a statement the proxy refused, the error to deliver in its
// place once the backend has answered everything sent before it.
type pendingSync struct {
	sent time.Time
	// refusal is an encoded ErrorResponse sent to the client instead of the
	// backend's answer to the Sync the proxy put in the refused message's place.
	refusal []byte
	// keepReady forwards the backend's ReadyForQuery after the refusal (a
	// refused simple Query); a refused Parse waits for the client's own Sync.
	keepReady bool
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

// close releases a pusher waiting for room; later pushes are dropped.
func (q *syncQueue) close() {
	q.mu.Lock()
	q.closed = true
	if q.cond != nil {
		q.cond.Broadcast()
	}
	q.mu.Unlock()
}

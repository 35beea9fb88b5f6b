package session

import (
	"sync"
	"time"
)

// syncQueue remembers when each outstanding Query, Sync or FunctionCall was
// sent, so the matching ReadyForQuery can time the statement. Its size is
// bounded: a client that pipelines more than the ring holds loses timings,
// never memory.
type syncQueue struct {
	mu      sync.Mutex
	ring    [64]time.Time
	head, n int
	dropped int
}

func (q *syncQueue) push(t time.Time) {
	q.mu.Lock()
	if q.n == len(q.ring) {
		q.dropped++
	} else {
		q.ring[(q.head+q.n)%len(q.ring)] = t
		q.n++
	}
	q.mu.Unlock()
}

// pop returns the oldest time, or false when none is known.
func (q *syncQueue) pop() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		if q.dropped > 0 {
			q.dropped--
		}
		return time.Time{}, false
	}
	t := q.ring[q.head]
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return t, true
}

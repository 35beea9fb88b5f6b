package session

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
)

// opKind is a client message the backend answers.
type opKind uint8

const (
	// Sync points: answered up to and including a ReadyForQuery.
	opQuery opKind = iota + 1 // Query: results of each statement, then ReadyForQuery
	opFunc                    // FunctionCall: FunctionCallResponse, then ReadyForQuery
	opSync                    // Sync: ReadyForQuery
	// Extended-protocol messages: one answer each (after an error the server
	// skips them, unanswered, up to the next Sync).
	opParse    // ParseComplete
	opBind     // BindComplete
	opDescribe // [ParameterDescription] then RowDescription or NoData
	opExecute  // DataRow* then CommandComplete, EmptyQueryResponse or PortalSuspended
	opClose    // CloseComplete
)

// syncPoint reports whether a ReadyForQuery ends the op's answer.
func (k opKind) syncPoint() bool { return k <= opSync }

// op is one outstanding client message (or one the proxy sent in its
// place), in the order the backend answers them. The client pump fills it
// before the message is written; the backend pump reads it when the answer
// arrives and recycles it after.
type op struct {
	kind opKind
	// injected ops are the proxy's own messages: their answers are not
	// forwarded to the client (errors are).
	injected bool
	// raise is the proxy's statement that raises a refusal: its error
	// reaches the client as the refused statement's.
	raise bool
	// arrived is when the client message arrived (statement timing).
	arrived time.Time
	// sent is when it was handed to the backend writer.
	sent time.Time

	// Tracked sessions only (a policy chain is configured).
	name    string            // opParse/opDescribe 'S'/opClose: statement; opBind/opExecute/opDescribe 'P'/opClose 'P': portal
	target  byte              // opDescribe, opClose: 'S' or 'P'
	prep    *prepared         // opParse: the statement it creates; opDescribe 'S': the statement described
	portal  *portal           // opBind: the portal it creates
	hooks   []stmt.ResultHook // opQuery: result hooks for every result set
	stmts   []sqlparse.Stmt   // opQuery: the statements of its text, for the tracker
	done    int               // opQuery: statements answered so far
	errored bool              // an ErrorResponse answered it
	rec     *stmt.Record      // opQuery, opExecute: the statement's record

	// Result hooks, set when the first row (opExecute) or a RowDescription
	// (opQuery) arrives.
	rowsReady bool
	fns       []stmt.RowFunc
}

// reset clears o for reuse.
func (o *op) reset() { *o = op{} }

// opQueue holds the outstanding ops in order. The client pump pushes, the
// backend pump peeks and pops. It is bounded: a client that pipelines more
// than maxOps messages ahead of the answers waits (after flushing what it
// has written, so the backend can answer) instead of growing the proxy's
// memory. Popped ops are recycled, so a steady stream allocates nothing.
type opQueue struct {
	// size mirrors n for a lock-free emptiness check in peek.
	size   atomic.Int32
	mu     sync.Mutex
	cond   *sync.Cond
	ring   []*op
	head   int
	n      int
	free   []*op
	closed bool
}

// maxOps bounds the answers a session may have outstanding.
const maxOps = 16384

// get returns a cleared op to fill and push.
func (q *opQueue) get() *op {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.free); n > 0 {
		o := q.free[n-1]
		q.free = q.free[:n-1]
		return o
	}
	return &op{}
}

// push appends o. When the queue is full, flush runs (so the backend sees
// what the pusher buffered) and push waits for room.
func (q *opQueue) push(o *op, flush func() error) {
	q.mu.Lock()
	if q.cond == nil {
		q.cond = sync.NewCond(&q.mu)
	}
	if q.n == len(q.ring) && len(q.ring) < maxOps {
		q.grow()
	}
	if q.n == len(q.ring) && !q.closed && flush != nil {
		q.mu.Unlock()
		flush()
		q.mu.Lock()
	}
	for q.n == len(q.ring) && !q.closed {
		q.cond.Wait()
	}
	if !q.closed {
		q.ring[(q.head+q.n)%len(q.ring)] = o
		q.n++
		q.size.Store(int32(q.n))
	}
	q.mu.Unlock()
}

// grow doubles the ring (called with mu held).
func (q *opQueue) grow() {
	size := max(16, 2*len(q.ring))
	ring := make([]*op, size)
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

// peek returns the oldest op, or nil.
func (q *opQueue) peek() *op {
	if q.size.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	return q.ring[q.head]
}

// pop removes the oldest op and recycles it.
func (q *opQueue) pop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return
	}
	o := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	q.size.Store(int32(q.n))
	o.reset()
	if len(q.free) < 64 {
		q.free = append(q.free, o)
	}
	if q.cond != nil {
		q.cond.Signal()
	}
}

// dropSyncsAfterCopy removes the Sync ops pushed after the newest Execute or
// Query: the server ignores Sync (and Flush) while it is in COPY FROM STDIN,
// so those Syncs are never answered.
func (q *opQueue) dropSyncsAfterCopy() {
	q.mu.Lock()
	defer q.mu.Unlock()
	last := -1
	for i := q.n - 1; i >= 0; i-- {
		k := q.ring[(q.head+i)%len(q.ring)].kind
		if k == opExecute || k == opQuery {
			last = i
			break
		}
	}
	if last < 0 {
		return
	}
	kept := last + 1
	for i := last + 1; i < q.n; i++ {
		o := q.ring[(q.head+i)%len(q.ring)]
		if o.kind == opSync {
			continue
		}
		q.ring[(q.head+kept)%len(q.ring)] = o
		kept++
	}
	for i := kept; i < q.n; i++ {
		q.ring[(q.head+i)%len(q.ring)] = nil
	}
	q.n = kept
	q.size.Store(int32(q.n))
	if q.cond != nil {
		q.cond.Broadcast()
	}
}

// close releases a pusher waiting for room; later pushes are dropped.
func (q *opQueue) close() {
	q.mu.Lock()
	q.closed = true
	if q.cond != nil {
		q.cond.Broadcast()
	}
	q.mu.Unlock()
}

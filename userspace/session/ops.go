package session

import (
	"errors"
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
	// opCopyEnd marks a CopyDone or CopyFail in the queue; it is never
	// answered. It tells which Syncs the server ignored during a COPY FROM
	// STDIN (those between the COPY's op and the marker).
	opCopyEnd
)

// syncPoint reports whether a ReadyForQuery ends the op's answer.
func (k opKind) syncPoint() bool { return k <= opSync }

// op is one outstanding client message (or one the proxy sent in its
// place), in the order the backend answers them. The client pump fills it
// before the message is written; the backend pump reads it when the answer
// arrives and recycles it after.
type op struct {
	kind opKind
	// leg is the backend connection the message went to (nil: fast).
	leg *leg
	// injected ops are the proxy's own messages: their answers are not
	// forwarded to the client (errors are).
	injected bool
	// raise is the proxy's statement that raises a refusal: its error
	// (raiseCode, raiseMsg) reaches the client as the refused statement's.
	raise               bool
	raiseCode, raiseMsg string
	// discard: the server (of another leg) answers it, but the client must
	// not see the answers: an earlier message of its pipeline failed.
	discard bool
	// raiseRec is the record of a refused Parse or Bind, shared by the ops
	// of its raise: the first of them to fail or be skipped emits it.
	raiseRec *stmt.Record
	// copying: the op's answer put the server in COPY FROM STDIN.
	copying bool
	// arrived is when the client message arrived (statement timing).
	arrived time.Time
	// sent is when it was handed to the backend writer (set for ops with a
	// record: its time on the backend).
	sent time.Time

	// Tracked sessions only (a policy chain is configured).
	name    string            // opParse/opDescribe 'S'/opClose: statement; opBind/opExecute/opDescribe 'P'/opClose 'P': portal
	target  byte              // opDescribe, opClose: 'S' or 'P'
	prep    *prepared         // opParse: the statement it creates; opDescribe 'S': the statement described
	portal  *portal           // opBind: the portal it creates
	hooks   []stmt.ResultHook // opQuery: result hooks for every result set
	stmts   []sqlparse.Stmt   // opQuery: the statements of its text, for the tracker
	one     [1]sqlparse.Stmt  // opQuery: stmts, for a text parsed in the session's scratch space
	done    int               // opQuery: statements answered so far
	errored bool              // an ErrorResponse answered it
	rec     *stmt.Record      // opQuery, opExecute: the statement's record
	audit   []int32           // opQuery: where audit comments start in the text sent (characters)

	// Result hooks, set when the first row (opExecute) or a RowDescription
	// (opQuery) arrives; fields is the column count they were given.
	rowsReady bool
	fns       []stmt.RowFunc
	fields    int
	// rows counts DataRows of a recorded statement (PortalSuspended has no
	// command tag).
	rows int64
}

// reset clears o for reuse.
func (o *op) reset() { *o = op{} }

// opQueue holds the outstanding ops in order. The client pump pushes, the
// backend pump peeks and pops. It follows two server states that make the
// server ignore messages, so that no op waits for an answer that never
// comes: after an error in the extended protocol the server skips every
// message up to the next Sync (skipping), and during COPY FROM STDIN it
// ignores Sync (copyOpen). It is bounded: a client that pipelines more than
// maxOps messages ahead of the answers waits (after flushing what it has
// written, so the backend can answer) instead of growing the proxy's memory;
// a wait without any answer for stallTimeout ends the session. Popped ops
// are recycled, so a steady stream allocates nothing.
type opQueue struct {
	// size mirrors n for a lock-free emptiness check in peek.
	size   atomic.Int32
	mu     sync.Mutex
	cond   *sync.Cond
	ring   []*op
	head   int
	n      int
	free   freeList[op]
	closed bool

	// skipLeg: an extended-protocol error on this leg; its messages are
	// dropped up to its next Sync. discarding: the answers of later
	// messages (on any leg) up to the client's next Sync are not shown.
	skip       bool
	skipLeg    *leg
	discarding bool
	copyOpen   bool // COPY FROM STDIN started and its CopyDone not yet queued
	copyData   bool // CopyData sent during the open COPY
	// copyAmbiguous: a Sync was dropped after CopyData; if the COPY then
	// fails, the server may have read that Sync after the error.
	copyAmbiguous bool
	// dropped are ops taken out unanswered, for the backend pump to settle.
	dropped []*op
}

// maxOps bounds the answers a session may have outstanding.
const maxOps = 16384

// stallTimeout ends a session whose full queue got no answer for so long.
var stallTimeout = 60 * time.Second

// errQueueStalled: the client pipelined maxOps messages and the server
// answered none of them for stallTimeout.
var errQueueStalled = errors.New("too many outstanding messages without an answer")

// get returns a cleared op to fill and push.
func (q *opQueue) get() *op {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.free.get()
}

// freeList keeps cleared values for reuse, so a steady stream allocates
// nothing (its owner's lock held).
type freeList[T any] []*T

// get returns a kept value, or a new one.
func (f *freeList[T]) get() *T {
	if n := len(*f); n > 0 {
		v := (*f)[n-1]
		*f = (*f)[:n-1]
		return v
	}
	return new(T)
}

// put keeps a cleared value, up to max of them.
func (f *freeList[T]) put(v *T, max int) {
	if len(*f) < max {
		*f = append(*f, v)
	}
}

// push appends o, unless the server will ignore its message: after an
// extended-protocol error everything but Sync is dropped, and during COPY
// FROM STDIN Sync is. Dropped ops go to the dropped list (settled by the
// backend pump). When the queue is full, flush runs (so the backend sees
// what the pusher buffered) and push waits for room.
func (q *opQueue) push(o *op, flush func() error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cond == nil {
		q.cond = sync.NewCond(&q.mu)
	}
	var deadline time.Time // read when the queue is first found full
	flushed := false
	for {
		// The server's state may change while the pusher waits for room:
		// look again each time.
		switch {
		case q.closed:
			return nil
		case q.skip && o.leg == q.skipLeg && o.kind != opSync:
			q.drop(o)
			return nil
		case o.kind == opSync && q.copyOpen:
			if q.copyData {
				q.copyAmbiguous = true
			}
			q.drop(o)
			return nil
		case o.kind == opCopyEnd && q.copyOpen:
			// The server's COPY already matched this end: nothing to wait for.
			q.copyOpen, q.copyData = false, false
			q.recycle(o)
			return nil
		}
		if q.n == len(q.ring) && len(q.ring) < maxOps {
			q.grow()
		}
		if q.n < len(q.ring) {
			switch {
			case q.skip && o.leg == q.skipLeg: // its Sync
				q.skip, q.skipLeg = false, nil
				q.discarding = q.discarding && o.injected
			case q.discarding && o.kind == opSync && !o.injected:
				q.discarding = false
			case q.discarding:
				o.discard = true
			}
			q.ring[(q.head+q.n)%len(q.ring)] = o
			q.n++
			q.size.Store(int32(q.n))
			return nil
		}
		if !flushed && flush != nil {
			flushed = true
			q.mu.Unlock()
			flush()
			q.mu.Lock()
			continue
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(stallTimeout)
		} else if time.Now().After(deadline) {
			return errQueueStalled
		}
		before := q.head
		waitTimeout(q.cond, time.Second)
		if q.head != before {
			deadline = time.Now().Add(stallTimeout)
		}
	}
}

// waitTimeout waits on c (its lock held) for a signal or about d.
func waitTimeout(c *sync.Cond, d time.Duration) {
	t := time.AfterFunc(d, c.Broadcast)
	c.Wait()
	t.Stop()
}

// drop keeps an op the server will not answer for the backend pump to
// settle (called with mu held).
func (q *opQueue) drop(o *op) {
	q.dropped = append(q.dropped, o)
}

// takeDropped returns the ops dropped unanswered since the last call.
func (q *opQueue) takeDropped() []*op {
	q.mu.Lock()
	defer q.mu.Unlock()
	d := q.dropped
	q.dropped = nil
	return d
}

// recycle returns a settled op to the free list (called with mu held).
func (q *opQueue) recycle(o *op) {
	o.reset()
	q.free.put(o, 64)
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
	q.recycle(o)
	if q.cond != nil {
		q.cond.Broadcast()
	}
}

// at returns the i-th op from the head (called with mu held).
func (q *opQueue) at(i int) *op { return q.ring[(q.head+i)%len(q.ring)] }

// compact keeps, of the ops from index from to the end, those keep says
// yes to, in order; the others are dropped (called with mu held).
func (q *opQueue) compact(from int, keep func(i int, o *op) bool) {
	w := from
	for r := from; r < q.n; r++ {
		o := q.at(r)
		if !keep(r, o) {
			q.drop(o)
			continue
		}
		q.ring[(q.head+w)%len(q.ring)] = o
		w++
	}
	for j := w; j < q.n; j++ {
		q.ring[(q.head+j)%len(q.ring)] = nil
	}
	q.n = w
	q.size.Store(int32(q.n))
	if q.cond != nil {
		q.cond.Broadcast()
	}
}

// extendedError applies an ErrorResponse to an extended-protocol message
// of leg failed (its op already popped): that server now skips every
// message up to its next Sync, so those ops are dropped (queued, or as they
// are pushed until that Sync). With several legs, the messages of the
// pipeline that went to the other legs up to the client's Sync still get
// answers, which the client must not see (PostgreSQL would have skipped
// them): they are marked discard.
func (q *opQueue) extendedError(failed *leg) {
	q.mu.Lock()
	defer q.mu.Unlock()
	inSkip, clientSynced := true, false
	q.compact(0, func(_ int, o *op) bool {
		switch {
		case clientSynced:
		case inSkip && o.leg == failed:
			if o.kind != opSync {
				return false
			}
			inSkip, clientSynced = false, !o.injected
		case o.kind == opSync && !o.injected:
			clientSynced = true
		default:
			o.discard = true
		}
		return true
	})
	q.skip, q.skipLeg = inSkip, failed
	q.discarding = !clientSynced
}

// pending reports whether an op of leg l is queued.
func (q *opQueue) pending(l *leg) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.n {
		if q.at(i).leg == l {
			return true
		}
	}
	return false
}

// isClosed reports whether the session is over.
func (q *opQueue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// copyIn applies a CopyInResponse to the head op: the server is in COPY
// FROM STDIN and ignores Sync until CopyDone or CopyFail. Syncs queued
// between the head and the first copy-end marker are dropped with the
// marker; without a queued marker, Syncs are dropped as they come, until
// one is pushed.
func (q *opQueue) copyIn() {
	q.mu.Lock()
	defer q.mu.Unlock()
	end := -1
	for i := 1; i < q.n; i++ {
		if q.at(i).kind == opCopyEnd {
			end = i
			break
		}
	}
	q.compact(1, func(i int, o *op) bool {
		if end >= 0 && i > end {
			return true
		}
		return o.kind != opSync && o.kind != opCopyEnd
	})
	q.copyOpen, q.copyData, q.copyAmbiguous = end < 0, false, false
}

// copyDataSent notes CopyData from the client.
func (q *opQueue) copyDataSent() {
	q.mu.Lock()
	if q.copyOpen {
		q.copyData = true
	}
	q.mu.Unlock()
}

// copyEnded notes that the server ended a COPY (CommandComplete or an
// error) and reports whether the Syncs dropped meanwhile make the order of
// answers unknowable (a Sync sent after CopyData of a COPY that failed).
func (q *opQueue) copyEnded(failed bool) (ambiguous bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ambiguous = failed && q.copyAmbiguous
	q.copyOpen, q.copyData, q.copyAmbiguous = false, false, false
	return ambiguous
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

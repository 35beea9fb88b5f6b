package session

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestOpQueueKeepsOrderFlushesAndBlocksWhenFull(t *testing.T) {
	var q opQueue
	for i := range maxOps {
		o := q.get()
		o.kind, o.arrived = opSync, time.Unix(int64(i), 0)
		if err := q.push(o, nil); err != nil {
			t.Fatal(err)
		}
	}
	var flushed atomic.Int32
	pushed := make(chan struct{})
	go func() {
		o := q.get()
		o.kind, o.arrived = opQuery, time.Unix(999999, 0)
		q.push(o, func() error { flushed.Add(1); return nil })
		close(pushed)
	}()
	// A push that waits must flush first, or the backend never sees what
	// it should answer.
	for deadline := time.Now().Add(10 * time.Second); flushed.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the waiting push did not flush")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-pushed:
		t.Fatal("push into a full queue did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	if q.peek().arrived.Unix() != 0 {
		t.Fatal("oldest op is not first")
	}
	q.pop()
	<-pushed
	for i := 1; i < maxOps; i++ {
		if o := q.peek(); o == nil || o.arrived.Unix() != int64(i) {
			t.Fatalf("op %d out of order", i)
		}
		q.pop()
	}
	if o := q.peek(); o == nil || o.kind != opQuery {
		t.Fatalf("the waiting push was lost: %+v", o)
	}
	q.pop()
	if q.peek() != nil {
		t.Fatal("queue not empty")
	}
	q.close()
	q.push(q.get(), nil) // must not block after close
}

func kindsOf(q *opQueue) []opKind {
	var got []opKind
	q.mu.Lock()
	for i := range q.n {
		got = append(got, q.at(i).kind)
	}
	q.mu.Unlock()
	return got
}

func pushKinds(t *testing.T, q *opQueue, kinds ...opKind) {
	t.Helper()
	for _, k := range kinds {
		o := q.get()
		o.kind = k
		if err := q.push(o, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpQueueCopyInDropsTheSyncsTheServerIgnores(t *testing.T) {
	// CopyDone pipelined before CopyInResponse: the Syncs up to the marker
	// go, the marker with them; what follows stays.
	var q opQueue
	pushKinds(t, &q, opExecute, opSync, opSync, opCopyEnd, opSync, opQuery)
	q.copyIn()
	if got := fmt.Sprint(kindsOf(&q)); got != fmt.Sprint([]opKind{opExecute, opSync, opQuery}) {
		t.Fatalf("after CopyInResponse: %v", got)
	}
	// CopyInResponse first: later Syncs are dropped as they come, until
	// the client's CopyDone.
	var q2 opQueue
	pushKinds(t, &q2, opQuery, opSync)
	q2.copyIn()
	pushKinds(t, &q2, opSync, opCopyEnd, opSync)
	if got := fmt.Sprint(kindsOf(&q2)); got != fmt.Sprint([]opKind{opQuery, opSync}) {
		t.Fatalf("while copying: %v", got)
	}
	if n := len(q2.takeDropped()); n != 2 {
		t.Fatalf("%d ops dropped, want the two ignored Syncs", n)
	}
}

func TestOpQueueSkipsToSyncAfterAnExtendedError(t *testing.T) {
	var q opQueue
	pushKinds(t, &q, opBind, opExecute, opQuery, opParse)
	q.pop() // the failed Parse's predecessor answered... the head failed:
	q.extendedError(nil)
	if got := kindsOf(&q); len(got) != 0 || !q.discarding {
		t.Fatalf("after the error: %v, discarding %v", got, q.discarding)
	}
	pushKinds(t, &q, opBind, opExecute, opSync, opParse)
	if got := fmt.Sprint(kindsOf(&q)); got != fmt.Sprint([]opKind{opSync, opParse}) {
		t.Fatalf("pushes after the error: %v", got)
	}
	if n := len(q.takeDropped()); n != 5 {
		t.Fatalf("%d dropped, want 5", n)
	}
	// With the Sync already queued, only the ops before it go.
	var q2 opQueue
	pushKinds(t, &q2, opParse, opBind, opExecute, opSync, opQuery)
	q2.pop()
	q2.extendedError(nil)
	if got := fmt.Sprint(kindsOf(&q2)); got != fmt.Sprint([]opKind{opSync, opQuery}) || q2.discarding {
		t.Fatalf("%v discarding=%v", got, q2.discarding)
	}
}

func TestOpQueueRecyclesOps(t *testing.T) {
	var q opQueue
	o := q.get()
	q.push(o, nil)
	q.pop()
	allocs := testing.AllocsPerRun(1000, func() {
		o := q.get()
		o.kind = opSync
		q.push(o, nil)
		q.pop()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per op, want 0", allocs)
	}
}

func TestOpQueueWaitingPushSeesTheErrorThatCameMeanwhile(t *testing.T) {
	var q opQueue
	kinds := make([]opKind, maxOps)
	kinds[0] = opParse
	for i := 1; i < maxOps; i++ {
		kinds[i] = opBind
	}
	pushKinds(t, &q, kinds...)
	pushed := make(chan struct{})
	go func() {
		o := q.get()
		o.kind = opExecute
		q.push(o, nil)
		close(pushed)
	}()
	time.Sleep(20 * time.Millisecond) // let it wait for room
	q.pop()                           // the Parse failed...
	q.extendedError(nil)              // ...so the server skips to Sync
	<-pushed
	if got := kindsOf(&q); len(got) != 0 {
		t.Fatalf("%d ops queued after the error, want none (the waiting Execute is skipped too)", len(got))
	}
}

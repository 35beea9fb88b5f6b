package session

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestOpQueueKeepsOrderFlushesAndBlocksWhenFull(t *testing.T) {
	var q opQueue
	for i := range maxOps {
		o := q.get()
		o.kind, o.arrived = opSync, time.Unix(int64(i), 0)
		q.push(o, nil)
	}
	var flushed atomic.Int32
	pushed := make(chan struct{})
	go func() {
		o := q.get()
		o.kind, o.arrived = opQuery, time.Unix(999999, 0)
		q.push(o, func() error { flushed.Add(1); return nil })
		close(pushed)
	}()
	select {
	case <-pushed:
		t.Fatal("push into a full queue did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	if flushed.Load() != 1 {
		t.Fatal("a push that waits must flush first, or the backend never sees what it should answer")
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

func TestOpQueueDropsSyncsSentDuringCopyIn(t *testing.T) {
	var q opQueue
	for _, k := range []opKind{opSync, opParse, opBind, opExecute, opSync, opSync} {
		o := q.get()
		o.kind = k
		q.push(o, nil)
	}
	q.dropSyncsAfterCopy()
	var got []opKind
	for o := q.peek(); o != nil; o = q.peek() {
		got = append(got, o.kind)
		q.pop()
	}
	want := []opKind{opSync, opParse, opBind, opExecute}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
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

package cache

import (
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/pgproxy/pgproxy/userspace/analysis"
)

// memKey is a memory-tier key; a struct of the two strings needs no allocation to build.
type memKey struct{ database, fingerprint string }

// memEntry is a decision and when it expires (Unix nanoseconds).
type memEntry struct {
	d       analysis.Decision
	expires int64
}

// memory is the in-process tier: an LRU whose entries also expire. Expiry is checked when an
// entry is read (an expired entry is a miss and is overwritten by the next Add); the LRU
// bound evicts the rest, so no cleaning goroutine is needed (the expirable LRU's cannot be
// stopped).
type memory struct {
	lru *lru.Cache[memKey, memEntry]
	// gen counts invalidations: a Valkey read that started before one must not put what it
	// read into memory (it may be the decision that was just deleted).
	gen atomic.Uint64
	// changes counts every write and removal (Tiered.Epoch).
	changes atomic.Uint64
}

func newMemory(size int) *memory {
	c, err := lru.New[memKey, memEntry](size)
	if err != nil { // only for size <= 0, which withDefaults rules out
		panic(err)
	}
	return &memory{lru: c}
}

// get returns the decision of k if it is present and not expired at now.
func (m *memory) get(k memKey, now time.Time) (analysis.Decision, bool) {
	e, ok := m.lru.Get(k)
	if !ok || now.UnixNano() >= e.expires {
		return analysis.Decision{}, false
	}
	return e.d, true
}

// add keeps d until expires.
func (m *memory) add(k memKey, d analysis.Decision, expires time.Time) {
	m.lru.Add(k, memEntry{d: d, expires: expires.UnixNano()})
	m.changes.Add(1)
}

// addIfCurrent keeps d until expires unless an invalidation happened since gen was read.
// Invalidations count gen up before they remove, so checking gen again after the add catches
// one that ran between the first check and the add.
func (m *memory) addIfCurrent(k memKey, d analysis.Decision, expires time.Time, gen uint64) {
	if m.gen.Load() != gen {
		return
	}
	m.add(k, d, expires)
	if m.gen.Load() != gen {
		m.lru.Remove(k)
	}
}

func (m *memory) remove(k memKey) {
	m.gen.Add(1)
	m.lru.Remove(k)
	m.changes.Add(1)
}

func (m *memory) removeDatabase(database string) {
	m.gen.Add(1)
	for _, k := range m.lru.Keys() {
		if k.database == database {
			m.lru.Remove(k)
		}
	}
	m.changes.Add(1)
}

func (m *memory) purge() {
	m.gen.Add(1)
	m.lru.Purge()
	m.changes.Add(1)
}

package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/pgproxy/pgproxy/userspace/analysis"
)

// closeGrace is how long Close waits for queued Valkey writes.
const closeGrace = time.Second

// Tiered is the decision cache: memory, then Valkey. It is safe for concurrent use.
type Tiered struct {
	o     Options
	mem   *memory
	vk    *remote // nil without a Valkey tier
	hooks Hooks
}

// New returns a cache with o. It does not connect to Valkey and does not block: the
// connection is made in the background, and until it is, the cache works from memory. It
// fails only for a configuration that can never work (an invalid URL, TLS settings with a
// redis:// URL).
func New(o Options) (*Tiered, error) {
	o = o.withDefaults()
	t := &Tiered{o: o, mem: newMemory(o.MemorySize), hooks: o.Hooks}
	if o.ValkeyURL == "" {
		return t, nil
	}
	opt, err := clientOption(o)
	if err != nil {
		return nil, err
	}
	t.vk = newRemote(o, opt, &t.hooks, t.invalidate, t.resubscribed)
	return t, nil
}

// Epoch changes whenever a decision is written to or removed from the
// memory tier (by this process, or by an invalidation from another one).
func (t *Tiered) Epoch() uint64 { return t.mem.changes.Load() }

// Get returns the decision for fingerprint in database: from memory, else from Valkey (and
// then copied into memory), with its Source set to the tier that answered, which is also
// returned. ok is false when neither has it. Get waits for Valkey at most Options.OpTimeout,
// and not at all while Valkey is unavailable.
func (t *Tiered) Get(ctx context.Context, database, fingerprint string) (d analysis.Decision, source analysis.Source, ok bool) {
	k := memKey{database, fingerprint}
	now := time.Now()
	if d, ok := t.mem.get(k, now); ok {
		t.hooks.lookup(analysis.SourceMemory, true)
		d.Source = analysis.SourceMemory
		return d, analysis.SourceMemory, true
	}
	t.hooks.lookup(analysis.SourceMemory, false)
	if t.vk == nil {
		return analysis.Decision{}, "", false
	}
	c := t.vk.usable()
	if c == nil {
		t.hooks.error("get", ErrUnavailable)
		return analysis.Decision{}, "", false
	}
	gen := t.mem.gen.Load()
	key := Key(database, fingerprint)
	value, ttl, found, err := t.vk.get(ctx, c, key)
	if err != nil {
		if _, reply := valkey.IsValkeyErr(err); reply && strings.HasPrefix(err.Error(), "WRONGTYPE") {
			t.malformed(key, err)
		} else {
			t.hooks.error("get", err)
		}
		t.hooks.lookup(analysis.SourceValkey, false)
		return analysis.Decision{}, "", false
	}
	if !found {
		t.hooks.lookup(analysis.SourceValkey, false)
		return analysis.Decision{}, "", false
	}
	if d, err = decode(value); err != nil {
		t.malformed(key, err)
		t.hooks.lookup(analysis.SourceValkey, false)
		return analysis.Decision{}, "", false
	}
	t.hooks.lookup(analysis.SourceValkey, true)
	if ttl <= 0 || ttl > t.o.TTL {
		ttl = t.o.TTL
	}
	t.mem.addIfCurrent(k, d, now.Add(ttl), gen)
	d.Source = analysis.SourceValkey
	return d, analysis.SourceValkey, true
}

// malformed reports a value that is not a decision and queues its deletion.
func (t *Tiered) malformed(key string, err error) {
	t.hooks.error("get", fmt.Errorf("%w: %s: %w", ErrMalformed, key, err))
	if err := t.vk.enqueue(writeOp{key: key}); err != nil {
		t.hooks.error("delete", err)
	}
}

// Set keeps d for fingerprint in database: in memory at once, in Valkey through the write
// queue (Set does not wait for it; a write that cannot be queued is dropped and reported to
// Hooks.OnError). d.Origin, when empty, is set to d.Source, the tier that made the decision.
// ctx is not used: nothing waits.
func (t *Tiered) Set(_ context.Context, database, fingerprint string, d analysis.Decision) {
	if d.Origin == "" {
		d.Origin = d.Source
	}
	t.mem.add(memKey{database, fingerprint}, d, time.Now().Add(t.o.TTL))
	if t.vk == nil {
		return
	}
	value, err := json.Marshal(d)
	if err != nil { // a Decision always encodes; kept for safety
		t.hooks.error("set", err)
		return
	}
	if err := t.vk.enqueue(writeOp{key: Key(database, fingerprint), value: value}); err != nil {
		t.hooks.error("set", err)
	}
}

// Delete forgets the decision for fingerprint in database: in this process's memory, in
// Valkey, and, through a message on InvalidationChannel, in the memory of every other
// process. It waits for Valkey, whatever the breaker says, until ctx ends or
// Options.AdminTimeout passes. The memory of this process is cleared even when it returns an
// error (ErrUnavailable when Valkey was never reached).
func (t *Tiered) Delete(ctx context.Context, database, fingerprint string) error {
	t.mem.remove(memKey{database, fingerprint})
	if t.vk == nil {
		return nil
	}
	c, err := t.vk.admin()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, t.o.AdminTimeout)
	defer cancel()
	key := Key(database, fingerprint)
	if err := c.Do(ctx, c.B().Del().Key(key).Build()).Error(); err != nil {
		t.hooks.error("delete", err)
		return fmt.Errorf("cache: delete %s: %w", key, err)
	}
	if err := t.vk.publish(ctx, c, key); err != nil {
		return fmt.Errorf("cache: publish invalidation of %s: %w", key, err)
	}
	return nil
}

// PurgeDatabase forgets every decision of database, as Delete does for one, and returns how
// many keys were deleted in Valkey.
func (t *Tiered) PurgeDatabase(ctx context.Context, database string) (int, error) {
	t.mem.removeDatabase(database)
	return t.purgeRemote(ctx, databasePattern(database))
}

// Purge forgets every decision, as Delete does for one, and returns how many keys were
// deleted in Valkey.
func (t *Tiered) Purge(ctx context.Context) (int, error) {
	t.mem.purge()
	return t.purgeRemote(ctx, KeyPrefix+"*")
}

func (t *Tiered) purgeRemote(ctx context.Context, pattern string) (int, error) {
	if t.vk == nil {
		return 0, nil
	}
	c, err := t.vk.admin()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.o.AdminTimeout)
	defer cancel()
	n, err := t.vk.deleteMatching(ctx, c, pattern)
	if err != nil {
		t.hooks.error("purge", err)
		return n, fmt.Errorf("cache: purge %s: %w", pattern, err)
	}
	msg := pattern
	if pattern == KeyPrefix+"*" {
		msg = purgeAllMessage
	}
	if err := t.vk.publish(ctx, c, msg); err != nil {
		return n, fmt.Errorf("cache: publish invalidation of %s: %w", pattern, err)
	}
	return n, nil
}

// invalidate handles a message on InvalidationChannel.
func (t *Tiered) invalidate(msg string) {
	if msg == purgeAllMessage {
		t.mem.purge()
		t.hooks.invalidate("all")
		return
	}
	if db, fp, ok := ParseKey(msg); ok {
		t.mem.remove(memKey{db, fp})
		t.hooks.invalidate("key")
		return
	}
	if db, ok := parsePattern(msg); ok {
		t.mem.removeDatabase(db)
		t.hooks.invalidate("database")
		return
	}
	t.hooks.error("invalidate", fmt.Errorf("%w: invalidation message %q", ErrMalformed, msg))
}

// resubscribed empties memory after the subscription was lost and made again: messages sent
// meanwhile were not heard.
func (t *Tiered) resubscribed() {
	t.mem.purge()
	t.hooks.invalidate("resubscribe")
}

// Available reports whether Valkey is in use: connected, and not skipped after failures.
// It is false for a cache without a Valkey tier.
func (t *Tiered) Available() bool { return t.vk != nil && t.vk.usable() != nil }

// Flush waits until no Valkey write is queued or in flight (each was sent or dropped), or
// ctx ends. For tests and shutdown; the query path never calls it.
func (t *Tiered) Flush(ctx context.Context) error {
	if t.vk == nil {
		return nil
	}
	return t.vk.flush(ctx)
}

// Close waits up to one second for queued Valkey writes, then stops the background
// goroutines and closes the connections. After Close the cache answers from memory only.
// It may wait up to Options.ConnectTimeout for a connection attempt in progress.
func (t *Tiered) Close() error {
	if t.vk != nil {
		t.vk.close(closeGrace)
	}
	return nil
}

// decode reads a Valkey value; anything but a decision with a known verdict is malformed.
func decode(value []byte) (analysis.Decision, error) {
	var d analysis.Decision
	if err := json.Unmarshal(value, &d); err != nil {
		return d, err
	}
	if d.Verdict != analysis.Efficient && d.Verdict != analysis.Inefficient {
		return d, fmt.Errorf("unknown verdict %q", d.Verdict)
	}
	if d.Origin == "" { // written by a Set that did not fill it: the stored source made it
		d.Origin = d.Source
	}
	return d, nil
}

// Package cache keeps the analysis decisions (analysis.Decision) of statement shapes, one per
// database and fingerprint, in two tiers:
//
//  1. memory: an LRU of Options.MemorySize decisions in this process (golang-lru), each
//     kept at most Options.TTL;
//  2. Valkey (or Redis): shared by every proxy replica and surviving restarts, under keys
//     "pgproxy:decision:<database>:<fingerprint>" (see Key) holding the decision as JSON,
//     with the TTL Options.TTL.
//
// Tiered.Get asks memory, then Valkey; a Valkey hit is copied into memory for the time the
// key has left in Valkey. Tiered.Set writes memory at once and queues the Valkey write.
//
// # The query path never waits for Valkey longer than Options.OpTimeout
//
//   - New does not connect: a background goroutine does, and retries with backoff until
//     Valkey answers. Until then Get and Set use memory only.
//   - Each Valkey read is bounded by OpTimeout (default 25 ms); a read that runs out counts
//     as a miss.
//   - Writes (Set) go through a bounded queue (Options.WriteQueue, default 1024) served by
//     Options.WriteWorkers goroutines (default 2), each write bounded by OpTimeout. Set never
//     blocks: when the queue is full the write is dropped (ErrQueueFull through OnError).
//   - A simple breaker: Options.BreakerFailures consecutive failed or timed-out Valkey
//     operations (default 3) mark Valkey unavailable. Get and Set then skip it (ErrUnavailable
//     through OnError) while the background goroutine probes it with PING after
//     Options.BreakerBackoff (default 1 s), doubling up to Options.BreakerMaxBackoff (default
//     10 s). The first probe whose PING comes back within OpTimeout makes it available
//     again; if it fails again soon after, the pause goes on doubling. The probe, not a
//     query, reconnects, so no query waits for a dial.
//
// Hooks report lookups per tier, errors per operation and the availability changes, for the
// daemon to count and log; the package itself logs nothing.
//
// # Invalidation across replicas
//
// Tiered.Delete removes one decision from this process's memory and from Valkey, then
// publishes its key on the Valkey channel "pgproxy:decision:invalidate" (InvalidationChannel).
// Every Tiered subscribes to that channel and drops the named decision from its memory, so
// the other replicas forget it within milliseconds. Tiered.PurgeDatabase and Tiered.Purge do
// the same for one database ("pgproxy:decision:<database>:*") or for everything ("*").
//
// A replica that was cut off from Valkey cannot hear invalidations: when its subscription is
// established again it empties its memory tier (the decisions are still in Valkey, so this
// costs one Valkey read per shape, not a new analysis). A replica that cannot reach Valkey at
// all keeps what is in its memory until the entries' TTL runs out.
//
// An operator can unblock a false positive without the proxy's help, with valkey-cli:
//
//	valkey-cli -u "$VALKEY_URL" DEL 'pgproxy:decision:shop:5f3e8c1a2b4d6e70'
//	valkey-cli -u "$VALKEY_URL" PUBLISH pgproxy:decision:invalidate 'pgproxy:decision:shop:5f3e8c1a2b4d6e70'
//
// A database name is percent-escaped in keys (Key): only A-Z, a-z, 0-9, '.', '_' and '-' stay
// as they are, so the separator ':' and glob characters never come from a name.
package cache

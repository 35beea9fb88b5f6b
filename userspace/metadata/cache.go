package metadata

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"
)

// Options configure a Cache. Zero fields take the defaults.
type Options struct {
	// TTL is how long facts are served before they are read again
	// (METADATA_CACHE_TTL). Default 1h. A lookup of an entry older than TTL
	// returns it at once and starts one refresh in the background.
	TTL time.Duration
	// NegativeTTL is how long "does not resolve" is remembered. Default 1m.
	NegativeTTL time.Duration
	// ErrorTTL is how long a failed catalog read (server down, timeout) is
	// remembered before the next attempt; a table whose refresh failed keeps
	// being served from its old entry meanwhile. Default 1s.
	ErrorTTL time.Duration
	// MaxTables bounds the tables kept (least recently used go first).
	// Default 10,000. Names that do not resolve are kept apart, in a second
	// LRU of the same bound, so a flood of unknown names cannot push out
	// the known tables.
	MaxTables int
	// QueryTimeout bounds one catalog read. Default 2s.
	QueryTimeout time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Redshift reads svv_table_info instead of pg_class and pg_index
	// (BACKEND_FLAVOR=redshift): rows, size, distribution style, sort key
	// and skew; Redshift has no indexes.
	Redshift bool
}

// Defaults of Options.
const (
	DefaultTTL          = time.Hour
	DefaultNegativeTTL  = time.Minute
	DefaultErrorTTL     = time.Second
	DefaultMaxTables    = 10_000
	DefaultQueryTimeout = 2 * time.Second
)

// Cache holds the facts of the tables of one database, read through a pool
// of the proxy's own. It is safe for concurrent use. Lookups of the same
// name that miss at the same time share one catalog read.
type Cache struct {
	pool     *pgxpool.Pool
	opts     Options
	tables   *lru.Cache[key, *entry] // resolved names
	negative *lru.Cache[key, *entry] // names that did not resolve, or whose read failed
	flight   singleflight.Group
	gen      atomic.Uint64 // bumped by Invalidate; reads started before it are not stored
}

type key struct{ schema, name string }

// entry is immutable once stored; an update stores a new one.
type entry struct {
	table   *Table // nil in the negative cache
	err     error  // *NotFoundError or a read error (negative cache only)
	expires time.Time
}

// New returns an empty cache reading through pool.
func New(pool *pgxpool.Pool, opts Options) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	if opts.ErrorTTL <= 0 {
		opts.ErrorTTL = DefaultErrorTTL
	}
	if opts.MaxTables <= 0 {
		opts.MaxTables = DefaultMaxTables
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tables, _ := lru.New[key, *entry](opts.MaxTables) // only fails for a size <= 0
	negative, _ := lru.New[key, *entry](opts.MaxTables)
	return &Cache{pool: pool, opts: opts, tables: tables, negative: negative}
}

// Lookup returns the facts of the relation schema.name; schema "" resolves
// name through the search_path of the cache's pool connections (not the
// client's: a caller that knows the client's schema should pass it; schemas
// the pool's role has no USAGE on are skipped, as PostgreSQL skips them).
// Names are identifiers as the parser produced them: case matters, no
// quotes.
//
// A name that does not resolve returns an error matching ErrNotFound. A
// failed catalog read returns that error, unless older facts of the table
// are at hand: then those are returned. The Table is shared: treat it as
// read-only. ctx bounds the wait only; a catalog read that the caller
// stops waiting for still completes (within QueryTimeout) and is stored.
func (c *Cache) Lookup(ctx context.Context, schema, name string) (*Table, error) {
	k := key{schema, name}
	now := c.opts.Now()
	stale, ok := c.tables.Get(k)
	if ok && now.Before(stale.expires) {
		return stale.table, nil
	}
	if !ok {
		if e, ok := c.negative.Get(k); ok && now.Before(e.expires) {
			return nil, e.err
		}
	}
	ch := c.flight.DoChan(c.flightKey(k), func() (any, error) { return c.read(ctx, k) })
	if ok {
		return stale.table, nil // served stale while the refresh runs
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Table), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Invalidate drops every entry, so the next lookup of each name reads the
// catalogs again. Reads already running are not stored.
func (c *Cache) Invalidate() {
	c.gen.Add(1)
	c.tables.Purge()
	c.negative.Purge()
}

// Len returns the number of names cached (resolved and not).
func (c *Cache) Len() int { return c.tables.Len() + c.negative.Len() }

// flightKey is the singleflight key of k in the current generation, so a
// lookup after Invalidate does not join a read started before it. Names
// cannot contain NUL.
func (c *Cache) flightKey(k key) string {
	var b strings.Builder
	g := c.gen.Load()
	b.Grow(len(k.schema) + len(k.name) + 10)
	for ; g > 0; g >>= 7 {
		b.WriteByte(byte(g&0x7f) | 0x80)
	}
	b.WriteByte(0)
	b.WriteString(k.schema)
	b.WriteByte(0)
	b.WriteString(k.name)
	return b.String()
}

// read runs one catalog read for k and stores what it learnt. It runs
// detached from the caller's cancellation (other lookups may be waiting for
// it), bounded by QueryTimeout.
func (c *Cache) read(ctx context.Context, k key) (*Table, error) {
	gen := c.gen.Load()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.QueryTimeout)
	defer cancel()
	read := readTable
	if c.opts.Redshift {
		read = readRedshiftTable
	}
	t, err := read(ctx, c.pool, k.schema, k.name)
	if c.gen.Load() != gen {
		return t, err // invalidated meanwhile: answer the waiters, store nothing
	}
	now := c.opts.Now()
	var nf *NotFoundError
	switch {
	case err == nil:
		c.tables.Add(k, &entry{table: t, expires: now.Add(c.opts.TTL)})
		c.negative.Remove(k)
	case errors.As(err, &nf):
		c.negative.Add(k, &entry{err: err, expires: now.Add(c.opts.NegativeTTL)})
		c.tables.Remove(k)
	default:
		if old, ok := c.tables.Peek(k); ok {
			// Keep serving what we knew; try again after ErrorTTL.
			c.tables.Add(k, &entry{table: old.table, expires: now.Add(c.opts.ErrorTTL)})
			return old.table, nil
		}
		c.negative.Add(k, &entry{err: err, expires: now.Add(c.opts.ErrorTTL)})
	}
	return t, err
}

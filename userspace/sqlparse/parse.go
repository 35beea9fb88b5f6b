// Package sqlparse parses SQL with PostgreSQL's own parser (pg_query) and
// answers questions about statements by walking the parse tree, never by
// matching text. Parse results are cached by query text.
package sqlparse

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Parsed is the parse tree of one query string (one or more statements).
// It is shared between callers through the cache: treat it as read-only.
type Parsed struct {
	Tree *pg_query.ParseResult
	Err  error

	sql       string
	fpOnce    sync.Once
	fp        string
	stmtsOnce sync.Once
	stmts     []Stmt
	cost      int64 // estimated bytes held in the cache
}

// SQL returns the text that was parsed.
func (p *Parsed) SQL() string { return p.sql }

// Fingerprint returns pg_query's fingerprint of the text: the same for
// statements that differ only in constants, whitespace and comments. It is
// computed once per cached text; a text that does not parse has none ("").
func (p *Parsed) Fingerprint() string {
	p.fpOnce.Do(func() {
		if p.Err == nil {
			p.fp, _ = pg_query.Fingerprint(p.sql)
		}
	})
	return p.fp
}

// Parser parses query text through an LRU cache. It is safe for concurrent
// use. The cache is bounded twice: by entries, and by the memory the parse
// trees take (a short text can parse into a large tree), so no stream of
// distinct statements can grow it past maxCacheBytes.
type Parser struct {
	cache *lru.Cache[string, *Parsed]
	mu    sync.Mutex
	bytes int64
}

// NewParser returns a parser caching up to size query strings (no cache
// when size <= 0).
func NewParser(size int) *Parser {
	p := &Parser{}
	if size > 0 {
		p.cache, _ = lru.NewWithEvict[string, *Parsed](size, func(_ string, v *Parsed) {
			p.mu.Lock()
			p.bytes -= v.cost
			p.mu.Unlock()
		})
	}
	return p
}

const (
	// maxCachedLen keeps huge one-off statements (bulk INSERTs) out of the cache.
	maxCachedLen = 16 << 10
	// maxCachedTree keeps one statement's tree from taking much of the budget.
	maxCachedTree = 1 << 20
)

// maxCacheBytes bounds the memory of all cached trees of a Parser.
var maxCacheBytes int64 = 64 << 20

// Parse returns the parse tree of sql; a syntax error is reported in Err.
func (p *Parser) Parse(sql string) *Parsed {
	if p.cache != nil {
		if parsed, ok := p.cache.Get(sql); ok {
			return parsed
		}
	}
	tree, err := pg_query.Parse(sql)
	parsed := &Parsed{Tree: tree, Err: err, sql: sql}
	if p.cache == nil || len(sql) > maxCachedLen {
		return parsed
	}
	// The wire size of the tree is a fair proxy for its memory (the Go
	// structures take a small multiple of it); with the text, the cost.
	parsed.cost = int64(3*proto.Size(tree) + 2*len(sql) + 256)
	if parsed.cost > maxCachedTree {
		return parsed
	}
	p.mu.Lock()
	p.bytes += parsed.cost
	over := p.bytes > maxCacheBytes
	p.mu.Unlock()
	p.cache.Add(sql, parsed)
	for over {
		if _, _, ok := p.cache.RemoveOldest(); !ok {
			break
		}
		p.mu.Lock()
		over = p.bytes > maxCacheBytes
		p.mu.Unlock()
	}
	return parsed
}

// CachedBytes returns the estimated memory of the cached trees.
func (p *Parser) CachedBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}

// Walk calls visit for every message in the tree, depth first; visit returns
// false to stop the walk early.
func Walk(m proto.Message, visit func(proto.Message) bool) bool {
	if m == nil {
		return true
	}
	return walk(m.ProtoReflect(), visit)
}

func walk(m protoreflect.Message, visit func(proto.Message) bool) bool {
	if !m.IsValid() {
		return true
	}
	if !visit(m.Interface()) {
		return false
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = walk(l.Get(i).Message(), visit)
			}
		case fd.Message() != nil && !fd.IsMap():
			ok = walk(v.Message(), visit)
		}
		return ok
	})
	return ok
}

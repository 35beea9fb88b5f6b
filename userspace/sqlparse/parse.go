// Package sqlparse parses SQL with PostgreSQL's own parser (pg_query) and
// answers questions about statements by walking the parse tree, never by
// matching text. Parse results are cached by query text.
package sqlparse

import (
	"fmt"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Parsed is the parse tree of one query string (one or more statements).
// It is shared between callers through the cache: treat it as read-only.
type Parsed struct {
	Err error

	tree *pg_query.ParseResult
	// tpl, when set, is a parsed text of the same shape (see shapeKey):
	// this text is parsed only when Tree is called; text is its
	// statement's text.
	tpl       *Parsed
	text      string
	treeOnce  sync.Once
	sql       string
	fpOnce    sync.Once
	fp        string
	stmtsOnce sync.Once
	stmts     []Stmt
	one       [1]Stmt // stmts of a text answered from its shape
	cost      int64   // estimated bytes held in the cache
	memoMu    sync.Mutex
	memo      map[any]any
}

// Shaped reports whether the text was answered from a parsed text of its
// shape (its tree is parsed only if Tree is called).
func (p *Parsed) Shaped() bool { return p.tpl != nil }

// Memo returns the value computed once for key about this text.
func (p *Parsed) Memo(key any, compute func() any) any {
	p.memoMu.Lock()
	defer p.memoMu.Unlock()
	if v, ok := p.memo[key]; ok {
		return v
	}
	v := compute()
	if p.memo == nil {
		p.memo = map[any]any{}
	}
	p.memo[key] = v
	return v
}

// ShapeMemo returns the value computed once for key about the text's shape:
// for answers that depend on ShapeTree only (compute must not read Tree or
// SQL), shared by every text of the shape.
func (p *Parsed) ShapeMemo(key any, compute func() any) any {
	if p.tpl != nil {
		return p.tpl.Memo(key, compute)
	}
	return p.Memo(key, compute)
}

// Shape returns the parsed text that stands for this text's shape: the
// text it was answered from (Shaped), else itself. Texts of one shape (one
// statement with other constants) have the same Shape while the cache
// holds it; a decision kept by Shape must not depend on the constants.
func (p *Parsed) Shape() *Parsed {
	if p.tpl != nil {
		return p.tpl
	}
	return p
}

// Own returns a Parsed of the same text that the caller may keep: p
// itself, or for a text answered in the caller's scratch space (ParseLocal)
// a new Parsed of it (without what Memo held for it).
func (p *Parsed) Own(scratch *Parsed) *Parsed {
	if p != scratch {
		return p
	}
	return &Parsed{tpl: p.tpl, sql: p.sql, text: p.text}
}

// SQL returns the text that was parsed.
func (p *Parsed) SQL() string { return p.sql }

// Tree returns the parse tree of the text (nil when it does not parse).
func (p *Parsed) Tree() *pg_query.ParseResult {
	if p.tpl == nil {
		return p.tree
	}
	p.treeOnce.Do(func() {
		tree, err := pg_query.Parse(p.sql)
		if err != nil {
			// The shape scanner promised a text that parses like its
			// template: a broken promise is a bug, and guessing at the
			// statement would be worse than ending the session.
			panic(fmt.Sprintf("sqlparse: a text of a parsed shape does not parse: %v", err))
		}
		p.tree = tree
	})
	return p.tree
}

// ShapeTree returns a tree of the text's shape: the statement kinds, names,
// tables, columns and operators of the text, with constants that may be
// other values (for a text answered from a template of its shape). For the
// questions whose answers do not depend on constants; it never parses.
func (p *Parsed) ShapeTree() *pg_query.ParseResult {
	if p.tpl != nil {
		return p.tpl.tree
	}
	return p.tree
}

// Fingerprint returns pg_query's fingerprint of the text: the same for
// statements that differ only in constants, whitespace and comments. It is
// computed once per cached text (or shape); a text that does not parse has
// none ("").
func (p *Parsed) Fingerprint() string {
	if p.tpl != nil {
		return p.tpl.Fingerprint()
	}
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
// distinct statements can grow it past maxCacheBytes. A second cache keeps
// parsed texts by shape, so that a text differing from one seen only in
// its literals is not parsed (see shapeKey).
type Parser struct {
	cache  *lru.Cache[string, *Parsed]
	shapes *lru.Cache[string, *Parsed]
	mu     sync.Mutex
	bytes  int64
}

// NewParser returns a parser caching up to size query strings (no cache
// when size <= 0), and as many shapes.
func NewParser(size int) *Parser {
	p := &Parser{}
	if size > 0 {
		p.cache, _ = lru.NewWithEvict[string, *Parsed](size, func(_ string, v *Parsed) {
			p.mu.Lock()
			p.bytes -= v.cost
			p.mu.Unlock()
		})
		p.shapes, _ = lru.New[string, *Parsed](size)
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
	if p.cache == nil {
		tree, err := pg_query.Parse(sql)
		return &Parsed{tree: tree, Err: err, sql: sql}
	}
	if parsed, ok := p.cache.Get(sql); ok {
		return parsed
	}
	var sh shape
	shaped := false
	if len(sql) <= maxCachedLen {
		sh, shaped = scanShape(sql, false)
	}
	return p.parseMiss(sql, sh, shaped)
}

// parseMiss is Parse for a text the text cache does not hold, whose shape
// scan gave sh (when shaped).
func (p *Parser) parseMiss(sql string, sh shape, shaped bool) *Parsed {
	if shaped {
		if tpl, ok := p.shapes.Get(sh.key); ok {
			return &Parsed{tpl: tpl, sql: sql, text: sh.stmtText(sql)}
		}
	}
	tree, err := pg_query.Parse(sql)
	parsed := &Parsed{tree: tree, Err: err, sql: sql}
	if len(sql) > maxCachedLen {
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
	if shaped && shapeEligible(parsed) {
		// The template stays alive while its shape is cached, whether or
		// not the text cache still holds it: its memory is counted as long
		// as the text cache does, and the shape cache is bounded by
		// entries of at most maxCachedTree.
		p.shapes.Add(sh.key, parsed)
	}
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

// ParseLocal is Parse for a caller that keeps its own index of shape
// templates, local (one session's, read and written without locks): when
// the text's shape is in local and fast says so for its template, the
// Parsed is made from the template without the shared caches; otherwise it
// is Parse's, and a template Parse found is added to local. The two give
// the same trees; only Parse's answer for a repeated text is the same
// *Parsed, with what Memo holds for it (fast should say no where that
// matters). buf is the caller's scratch space for the shape key.
//
// When scratch is not nil, a text answered from local is answered in
// *scratch, which is reset for it (nothing is allocated): the caller owns
// scratch and must let no reference to it, or to its Statements, outlive
// its use of this text (Own makes a Parsed that may).
func (p *Parser) ParseLocal(sql string, local map[string]*Parsed, buf *[]byte, fast func(tpl *Parsed) bool, scratch *Parsed) *Parsed {
	if p.cache == nil || len(sql) > maxCachedLen {
		return p.Parse(sql)
	}
	key, sh, shaped := appendShape((*buf)[:0], sql, false)
	*buf = key
	if shaped {
		if tpl, ok := local[string(key)]; ok && fast(tpl) {
			if scratch == nil {
				return &Parsed{tpl: tpl, sql: sql, text: sh.stmtText(sql)}
			}
			*scratch = Parsed{tpl: tpl, sql: sql, text: sh.stmtText(sql)}
			return scratch
		}
	}
	if parsed, ok := p.cache.Get(sql); ok {
		return parsed
	}
	if shaped {
		sh.key = string(key) // parseMiss and local keep it
	}
	parsed := p.parseMiss(sql, sh, shaped)
	if parsed.tpl != nil {
		local[sh.key] = parsed.tpl
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

// Package sqlparse parses SQL with PostgreSQL's own parser (pg_query) and
// answers questions about statements by walking the parse tree, never by
// matching text. Parse results are cached by query text.
package sqlparse

import (
	"container/list"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Parsed is the parse tree of one query string (one or more statements).
// It is shared between callers through the cache: treat it as read-only.
type Parsed struct {
	Tree *pg_query.ParseResult
	Err  error
}

// Parser parses query text through an LRU cache.
type Parser struct {
	mu    sync.Mutex
	max   int
	order *list.List
	items map[string]*list.Element
}

type entry struct {
	sql    string
	parsed *Parsed
}

// NewParser returns a parser caching up to size query strings.
func NewParser(size int) *Parser {
	return &Parser{max: size, order: list.New(), items: map[string]*list.Element{}}
}

// maxCachedLen keeps huge one-off statements (bulk INSERTs) out of the cache.
const maxCachedLen = 16 << 10

// Parse returns the parse tree of sql; a syntax error is reported in Err.
func (p *Parser) Parse(sql string) *Parsed {
	p.mu.Lock()
	if el, ok := p.items[sql]; ok {
		p.order.MoveToFront(el)
		parsed := el.Value.(*entry).parsed
		p.mu.Unlock()
		return parsed
	}
	p.mu.Unlock()
	tree, err := pg_query.Parse(sql)
	parsed := &Parsed{Tree: tree, Err: err}
	if len(sql) > maxCachedLen || p.max <= 0 {
		return parsed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.items[sql]; !ok {
		p.items[sql] = p.order.PushFront(&entry{sql, parsed})
		for p.order.Len() > p.max {
			last := p.order.Back()
			p.order.Remove(last)
			delete(p.items, last.Value.(*entry).sql)
		}
	}
	return parsed
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
